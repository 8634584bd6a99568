#!/usr/bin/env python3
"""Generate credential_hash_v2.json: test vectors for the v2 credential hash,
the v2 issuer signature and Merkle trees over v2 hashes.

Written independently of the Rust implementation (crates/domain/src was not
consulted).  Only the Python 3 standard library plus the `cryptography`
package (for Ed25519) are used.  Fully deterministic: all UUIDs, salts and
seeds are fixed literals below; Ed25519 signatures are deterministic.

Run from anywhere:  python3 crates/domain/tests/vectors/gen_v2.py
It rewrites credential_hash_v2.json next to this script and, before writing,
self-checks its v1 hash and Merkle code against the published
credential_hash_v1.json and merkle_v1.json in the same directory.
"""

import hashlib
import json
import struct
import uuid
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = Path(__file__).resolve().parent
OUT = HERE / "credential_hash_v2.json"

V1_DOMAIN = b"credential-anchor/v1"
V2_DOMAIN = b"credential-anchor/v2"
V2_SIG_DOMAIN = b"credential-anchor/v2/issuer-signature"

DEFINITION = (
    'credential_hash_v2 = SHA-256(b"credential-anchor/v2" || for each of '
    "[credential_id (16 raw UUID bytes, big-endian / RFC 4122 order), salt (32 raw bytes), "
    "signing key_id utf8, signing public key (32 raw Ed25519 bytes), "
    "file_digest (32 raw bytes), issuer utf8, recipient utf8, issued_at canonical utf8 "
    "(%Y-%m-%dT%H:%M:%SZ, UTC), serial utf8]: u32 big-endian byte length || bytes); "
    "file_digest = SHA-256(file bytes)"
)
SIGNATURE_DEFINITION = (
    'message = b"credential-anchor/v2/issuer-signature" || u32 big-endian byte length of '
    "key_id utf8 || key_id utf8 || credential_hash_v2 (32 raw bytes); "
    "signature = Ed25519(private key from 32-byte seed, message) (RFC 8032, deterministic); "
    "public key and signature in base58 (Bitcoin alphabet)"
)
GENERATED_BY = (
    "python3 hashlib + cryptography (Ed25519), crates/domain/tests/vectors/gen_v2.py, "
    "independently of the Rust implementation"
)

# --------------------------------------------------------------------------
# base58 (Bitcoin alphabet), by hand
# --------------------------------------------------------------------------
B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n > 0:
        n, r = divmod(n, 58)
        out.append(B58_ALPHABET[r])
    # each leading zero byte is encoded as a leading '1'
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        n = n * 58 + B58_ALPHABET.index(ch)
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * zeros + body


# --------------------------------------------------------------------------
# hashing
# --------------------------------------------------------------------------
def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def lp(data: bytes) -> bytes:
    """u32 big-endian byte length || bytes"""
    return struct.pack(">I", len(data)) + data


def canonical_issued_at(text: str) -> str:
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError(f"issued_at without offset: {text!r}")
    if dt.microsecond:
        raise ValueError(f"issued_at with fractional seconds: {text!r}")
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_bytes(case: dict) -> bytes:
    has_utf8 = "file_utf8" in case
    has_hex = "file_hex" in case
    assert has_utf8 != has_hex, case["name"]
    return case["file_utf8"].encode("utf-8") if has_utf8 else bytes.fromhex(case["file_hex"])


def credential_hash_v1(digest: bytes, issuer: str, recipient: str, issued_at_c: str, serial: str) -> bytes:
    msg = V1_DOMAIN
    for field in (digest, issuer.encode(), recipient.encode(), issued_at_c.encode(), serial.encode()):
        msg += lp(field)
    return sha256(msg)


def credential_hash_v2(
    cred_id: uuid.UUID,
    salt: bytes,
    key_id: str,
    public_key: bytes,
    digest: bytes,
    issuer: str,
    recipient: str,
    issued_at_c: str,
    serial: str,
) -> bytes:
    assert len(cred_id.bytes) == 16 and len(salt) == 32 and len(digest) == 32 and len(public_key) == 32
    msg = V2_DOMAIN
    for field in (
        cred_id.bytes,
        salt,
        key_id.encode("utf-8"),
        public_key,
        digest,
        issuer.encode(),
        recipient.encode(),
        issued_at_c.encode(),
        serial.encode(),
    ):
        msg += lp(field)
    return sha256(msg)


def signature_message_v2(key_id: str, cred_hash: bytes) -> bytes:
    assert len(cred_hash) == 32
    return V2_SIG_DOMAIN + lp(key_id.encode("utf-8")) + cred_hash


# --------------------------------------------------------------------------
# Merkle (unchanged from v1)
# --------------------------------------------------------------------------
def merkle_leaf(h: bytes) -> bytes:
    return sha256(b"\x00" + h)


def merkle_node(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def merkle_levels(leaves: list) -> list:
    level = [merkle_leaf(h) for h in leaves]
    levels = [level]
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level) - 1, 2):
            nxt.append(merkle_node(level[i], level[i + 1]))
        if len(level) % 2 == 1:
            nxt.append(level[-1])  # odd last node promoted unchanged
        level = nxt
        levels.append(level)
    return levels


def merkle_root(leaves: list) -> bytes:
    return merkle_levels(leaves)[-1][0]


def merkle_proof(leaves: list, index: int) -> list:
    """Steps from leaf to root; side = side where the SIBLING sits.
    A promoted node (no sibling) contributes no step."""
    steps = []
    levels = merkle_levels(leaves)
    idx = index
    for level in levels[:-1]:
        if idx % 2 == 1:
            steps.append({"side": "left", "hash": level[idx - 1].hex()})
        elif idx + 1 < len(level):
            steps.append({"side": "right", "hash": level[idx + 1].hex()})
        idx //= 2
    return steps


def merkle_verify(leaf_hash: bytes, steps: list, root: bytes) -> bool:
    acc = merkle_leaf(leaf_hash)
    for st in steps:
        sib = bytes.fromhex(st["hash"])
        acc = merkle_node(sib, acc) if st["side"] == "left" else merkle_node(acc, sib)
    return acc == root


# --------------------------------------------------------------------------
# inputs (all fixed)
# --------------------------------------------------------------------------
ID_A = "0190f1e2-3a4b-7c5d-8e6f-0123456789ab"
ID_B = "0190f1e2-3a4b-7c5d-8e6f-0123456789ac"  # differs from ID_A in the last byte only
ID_C = "0191a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b"
ID_D = "018f0000-0000-7000-8000-000000000000"
ID_E = "01920a0b-0c0d-7e0f-b011-121314151617"
ID_F = "0193ffff-ffff-7fff-bfff-ffffffffffff"
ID_G = "0194c0de-cafe-7bad-a5a5-5a5a5a5a5a5a"
ID_H = "0195abcd-ef01-7234-9567-89abcdef0123"
ID_I = "0196d00d-f00d-7bee-8fed-c0ffee000001"

SALT_1 = "5a1f0c3e9b7d24681357aceb02468ace13579bdf0f1e2d3c4b5a69788796a5b4"
SALT_2 = "5a1f0c3e9b7d24681357aceb02468ace13579bdf0f1e2d3c4b5a69788796a5b5"  # differs from SALT_1 in the last byte only
SALT_3 = "0000000000000000000000000000000000000000000000000000000000000000"
SALT_4 = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
SALT_5 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
SALT_6 = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
SALT_7 = "9e3779b97f4a7c15f39cc0605cedc8341082276bf3a27251f86c6a11d0c18e95"
SALT_8 = "243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89"

BINARY_FILE_HEX = bytes(range(256)).hex()

CASES_IN = [
    {
        "name": "simple, only key_id differs",
        "credential_id": "0190f1e2-3a4b-7c5d-8e6f-0123456789ab",
        "salt_hex": "5a1f0c3e9b7d24681357aceb02468ace13579bdf0f1e2d3c4b5a69788796a5b4",
        "key_id": "uni-graz.2024-02",
        "file_utf8": "hello diploma",
        "issuer": "uni-graz",
        "recipient": "student-0001",
        "issued_at": "2024-06-30T12:00:00Z",
        "serial": "BSC-2024-0001",
    },
    {
        "name": "simple, only signing key differs",
        "credential_id": "0190f1e2-3a4b-7c5d-8e6f-0123456789ab",
        "salt_hex": "5a1f0c3e9b7d24681357aceb02468ace13579bdf0f1e2d3c4b5a69788796a5b4",
        "seed_hex": "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100",
        "file_utf8": "hello diploma",
        "issuer": "uni-graz",
        "recipient": "student-0001",
        "issued_at": "2024-06-30T12:00:00Z",
        "serial": "BSC-2024-0001",
    },
    {
        "name": "simple",
        "credential_id": ID_A,
        "salt_hex": SALT_1,
        "file_utf8": "hello diploma",
        "issuer": "uni-graz",
        "recipient": "student-0001",
        "issued_at": "2024-06-30T12:00:00Z",
        "serial": "BSC-2024-0001",
    },
    {
        "name": "simple, only salt differs",
        "credential_id": ID_A,
        "salt_hex": SALT_2,
        "file_utf8": "hello diploma",
        "issuer": "uni-graz",
        "recipient": "student-0001",
        "issued_at": "2024-06-30T12:00:00Z",
        "serial": "BSC-2024-0001",
    },
    {
        "name": "simple, only credential_id differs",
        "credential_id": ID_B,
        "salt_hex": SALT_1,
        "file_utf8": "hello diploma",
        "issuer": "uni-graz",
        "recipient": "student-0001",
        "issued_at": "2024-06-30T12:00:00Z",
        "serial": "BSC-2024-0001",
    },
    {
        "name": "empty file, offset converted to UTC, non-ASCII recipient",
        "credential_id": ID_C,
        "salt_hex": SALT_6,
        "file_utf8": "",
        "issuer": "tu-wien",
        "recipient": "Zoë Müller-Łukasz",
        "issued_at": "2024-07-01T01:30:00+02:00",
        "serial": "2024/MSc.CS_7",
    },
    {
        "name": "binary file, shortest fields, earliest year, all-zero salt",
        "credential_id": ID_D,
        "salt_hex": SALT_3,
        "file_hex": BINARY_FILE_HEX,
        "issuer": "a",
        "recipient": "x",
        "issued_at": "1900-01-01T00:00:00Z",
        "serial": "1",
    },
    {
        "name": "longest fields, latest second, all-ones salt",
        "credential_id": ID_F,
        "salt_hex": SALT_4,
        "file_utf8": "%PDF-1.7\nfake diploma body\n%%EOF\n",
        "issuer": "abcdefghijklmnopqrstuvwxyz012345",
        "recipient": "R" * 100 + "é" * 28,
        "issued_at": "9999-12-31T23:59:59Z",
        "serial": "S" * 60 + "/._-",
    },
    {
        "name": "boundary ab|c",
        "credential_id": ID_E,
        "salt_hex": SALT_5,
        "file_utf8": "same file",
        "issuer": "ab",
        "recipient": "c",
        "issued_at": "2024-01-01T00:00:00Z",
        "serial": "x",
    },
    {
        "name": "boundary a|bc",
        "credential_id": ID_E,
        "salt_hex": SALT_5,
        "file_utf8": "same file",
        "issuer": "a",
        "recipient": "bc",
        "issued_at": "2024-01-01T00:00:00Z",
        "serial": "x",
    },
    {
        "name": "negative offset crosses year boundary, non-ASCII recipient, small binary file",
        "credential_id": ID_G,
        "salt_hex": SALT_7,
        "file_hex": "00ff00ff25504446",
        "issuer": "uni-wien",
        "recipient": "Ōtsuka Ren 大塚蓮",
        "issued_at": "2023-12-31T21:15:07-05:30",
        "serial": "MA-2023_7.b",
    },
]

# Seed 1 is the RFC 8032 section 7.1 TEST 1 secret key (its public key is
# checked below); seed 2 is an arbitrary fixed value.
SEED_1 = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
SEED_2 = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100"
RFC8032_TEST1_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"

# The signing key of each case (seed, key id): part of the v2 hash. Default: seed 1 under
# "uni-graz.2024-01"; a case may name its own.
OWN_KEYS = {
    "empty file, offset converted to UTC, non-ASCII recipient": (SEED_2, "tu-wien_key.1-A"),
    "binary file, shortest fields, earliest year, all-zero salt": (SEED_2, "k"),
}


def case_key(case: dict):
    if case["name"] in OWN_KEYS:
        return OWN_KEYS[case["name"]]
    return case.get("seed_hex", SEED_1), case.get("key_id", "uni-graz.2024-01")


SIGNATURES_IN = [
    {"name": "seed 1, key uni-graz.2024-01", "case": "simple"},
    {"name": "seed 1, other key id (the hash differs too)", "case": "simple, only key_id differs"},
    {"name": "seed 2, key id with every allowed punctuation", "case": "empty file, offset converted to UTC, non-ASCII recipient"},
    {"name": "seed 2, one-character key id", "case": "binary file, shortest fields, earliest year, all-zero salt"},
    {"name": "seed 2, other key of the same id as the simple case (the hash differs)", "case": "simple, only signing key differs"},
]

MERKLE_IN = [
    {"name": "single leaf", "cases": ["simple"]},
    {
        "name": "three leaves",
        "cases": ["simple", "simple, only salt differs", "simple, only credential_id differs"],
    },
    {
        "name": "five leaves",
        "cases": [
            "simple",
            "empty file, offset converted to UTC, non-ASCII recipient",
            "binary file, shortest fields, earliest year, all-zero salt",
            "longest fields, latest second, all-ones salt",
            "negative offset crosses year boundary, non-ASCII recipient, small binary file",
        ],
    },
]


# --------------------------------------------------------------------------
# self-checks against the published v1 vectors
# --------------------------------------------------------------------------
def check_v1_published(cases_out: list) -> list:
    """Recompute v1 hashes of the published v1 cases and of every v2 case
    that shares a published v1 case's fields; return a list of report lines."""
    report = []
    v1 = json.loads((HERE / "credential_hash_v1.json").read_text(encoding="utf-8"))
    key = lambda c: (file_bytes(c), c["issuer"], c["recipient"], c["issued_at"], c["serial"])
    published = {}
    for c in v1["cases"]:
        digest = sha256(file_bytes(c))
        canon = canonical_issued_at(c["issued_at"])
        h = credential_hash_v1(digest, c["issuer"], c["recipient"], canon, c["serial"])
        assert canon == c["issued_at_canonical"], c["name"]
        assert digest.hex() == c["file_digest_hex"], c["name"]
        assert h.hex() == c["credential_hash_hex"], c["name"]
        assert b58encode(h) == c["credential_hash_base58"], c["name"]
        assert b58decode(c["credential_hash_base58"]) == h, c["name"]
        published[key(c)] = c
    report.append(f"v1: all {len(v1['cases'])} published credential_hash_v1.json cases reproduced")
    for c in cases_out:
        p = published.get(key(c))
        if p is not None:
            assert c["v1_credential_hash_hex"] == p["credential_hash_hex"], c["name"]
            report.append(f"v1: v2 case {c['name']!r} -> v1 hash equals published {p['name']!r}: {p['credential_hash_hex']}")
    return report


def check_merkle_published() -> str:
    m = json.loads((HERE / "merkle_v1.json").read_text(encoding="utf-8"))
    for c in m["cases"]:
        leaves = [sha256(f"leaf-{i}".encode()) for i in range(c["leaf_count"])]
        root = merkle_root(leaves)
        assert root.hex() == c["root_hex"], c["leaf_count"]
        for p in c["proofs"]:
            assert merkle_proof(leaves, p["leaf_index"]) == p["steps"], (c["leaf_count"], p["leaf_index"])
    return f"merkle: all {len(m['cases'])} published merkle_v1.json trees (roots and proofs) reproduced"


# --------------------------------------------------------------------------
def main() -> None:
    cases_out = []
    by_name = {}
    for c in CASES_IN:
        cid = uuid.UUID(c["credential_id"])
        assert str(cid) == c["credential_id"]  # lowercase hyphenated form
        salt = bytes.fromhex(c["salt_hex"])
        data = file_bytes(c)
        digest = sha256(data)
        canon = canonical_issued_at(c["issued_at"])
        seed_hex, key_id = case_key(c)
        sk = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))
        pk = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        h2 = credential_hash_v2(cid, salt, key_id, pk, digest, c["issuer"], c["recipient"], canon, c["serial"])
        h1 = credential_hash_v1(digest, c["issuer"], c["recipient"], canon, c["serial"])
        assert h1 != h2
        out = {
            "name": c["name"],
            "credential_id": c["credential_id"],
            "salt_hex": c["salt_hex"],
            "seed_hex": seed_hex,
            "key_id": key_id,
            "signing_public_key_base58": b58encode(pk),
        }
        if "file_utf8" in c:
            out["file_utf8"] = c["file_utf8"]
        else:
            out["file_hex"] = c["file_hex"]
        out.update(
            {
                "issuer": c["issuer"],
                "recipient": c["recipient"],
                "issued_at": c["issued_at"],
                "issued_at_canonical": canon,
                "serial": c["serial"],
                "file_digest_hex": digest.hex(),
                "credential_hash_hex": h2.hex(),
                "credential_hash_base58": b58encode(h2),
                "v1_credential_hash_hex": h1.hex(),
            }
        )
        assert c["name"] not in by_name
        by_name[c["name"]] = h2
        cases_out.append(out)

    assert len(set(by_name.values())) == len(by_name), "v2 hashes must be pairwise distinct"

    sigs_out = []
    for s in SIGNATURES_IN:
        # The signer is the case's own key: in v2 the key is part of the hash it signs.
        case = next(c for c in CASES_IN if c["name"] == s["case"])
        s = dict(s)
        s["seed_hex"], s["key_id"] = case_key(case)
        sk = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(s["seed_hex"]))
        pk = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        if s["seed_hex"] == SEED_1:
            assert pk.hex() == RFC8032_TEST1_PUBLIC
        msg = signature_message_v2(s["key_id"], by_name[s["case"]])
        sig = sk.sign(msg)
        assert sig == sk.sign(msg)  # deterministic
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)  # raises on failure
        assert b58decode(b58encode(pk)) == pk and b58decode(b58encode(sig)) == sig
        sigs_out.append(
            {
                "name": s["name"],
                "case": s["case"],
                "seed_hex": s["seed_hex"],
                "key_id": s["key_id"],
                "public_key_base58": b58encode(pk),
                "message_hex": msg.hex(),
                "signature_base58": b58encode(sig),
            }
        )

    merkle_out = []
    for t in MERKLE_IN:
        leaves = [by_name[n] for n in t["cases"]]
        root = merkle_root(leaves)
        proofs = []
        for i in range(len(leaves)):
            steps = merkle_proof(leaves, i)
            assert merkle_verify(leaves[i], steps, root)
            proofs.append({"leaf_index": i, "steps": steps})
        merkle_out.append({"name": t["name"], "cases": t["cases"], "root_hex": root.hex(), "proofs": proofs})

    report = check_v1_published(cases_out)
    report.append(check_merkle_published())

    doc = {
        "format": "credential-anchor/v2",
        "definition": DEFINITION,
        "signature_definition": SIGNATURE_DEFINITION,
        "generated_by": GENERATED_BY,
        "cases": cases_out,
        "signatures": sigs_out,
        "merkle": merkle_out,
    }
    OUT.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for line in report:
        print(line)
    print(f"wrote {OUT} ({len(cases_out)} cases, {len(sigs_out)} signatures, {len(merkle_out)} merkle trees)")


if __name__ == "__main__":
    main()
