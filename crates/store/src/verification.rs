//! Reads for public verification (`POST /v1/verify`, the `/verify` page): credentials found
//! by content hash or by id without an API key. Verification never writes.

use domain::hash::CredentialHash;
use domain::{CredentialId, IssuerId};

use crate::credentials::{credential_from_row, CredentialRecord, CREDENTIAL_COLUMNS};
use crate::{Store, StoreError};

impl Store {
    /// The issuer's credential with this hash (uses the `credentials_hash` index). The same
    /// hash twice for one issuer would need the same serial, which is unique.
    pub async fn credential_by_hash(
        &self,
        issuer: &IssuerId,
        hash: &CredentialHash,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {CREDENTIAL_COLUMNS} FROM credentials \
                     WHERE credential_hash = $1 AND issuer_id = $2 LIMIT 1"
                ),
                &[&hash.as_bytes().as_slice(), &issuer.as_str()],
            )
            .await?;
        row.as_ref().map(credential_from_row).transpose()
    }

    /// The credential of `issuer` with this serial (unique per issuer).
    pub async fn credential_by_serial(
        &self,
        issuer: &IssuerId,
        serial: &domain::Serial,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {CREDENTIAL_COLUMNS} FROM credentials \
                     WHERE issuer_id = $1 AND serial = $2"
                ),
                &[&issuer.as_str(), &serial.as_str()],
            )
            .await?;
        row.as_ref().map(credential_from_row).transpose()
    }

    /// A credential by id, whatever its issuer (a proof bundle names both; the caller checks
    /// they agree).
    pub async fn credential_by_id(
        &self,
        id: &CredentialId,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE id = $1"),
                &[id.as_uuid()],
            )
            .await?;
        row.as_ref().map(credential_from_row).transpose()
    }
}
