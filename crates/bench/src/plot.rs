//! PNG plots (plotters, bitmap backend; text with the DejaVu font Debian ships, registered at
//! runtime so no system font library is needed). A missing font skips the plots, never the run.

use std::path::Path;

use plotters::prelude::*;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Registers the font once; false when it is not installed.
pub fn init_font() -> bool {
    let Ok(bytes) = std::fs::read(FONT) else {
        return false;
    };
    // plotters keeps a 'static reference to the font bytes.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
}

/// Latency CDF of single issuance at half the max rate.
pub fn latency_cdf(path: &Path, samples_ms: &[f64], title: &str) -> anyhow::Result<()> {
    let mut s: Vec<f64> = samples_ms.to_vec();
    s.sort_by(f64::total_cmp);
    let max = s.last().copied().unwrap_or(1.0).max(1.0);
    let root = BitMapBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..max * 1.05, 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc("latency (ms)")
        .y_desc("requests at or below (%)")
        .draw()?;
    let n = s.len().max(1) as f64;
    chart.draw_series(LineSeries::new(
        s.iter()
            .enumerate()
            .map(|(i, v)| (*v, (i + 1) as f64 * 100.0 / n)),
        &BLUE,
    ))?;
    root.present()?;
    Ok(())
}

/// Finalized credentials over time for the merkle-mode graduation-day run.
pub fn progress(path: &Path, points: &[(f64, i64)], n: usize, title: &str) -> anyhow::Result<()> {
    let max_t = points.last().map(|p| p.0).unwrap_or(1.0).max(1.0);
    let root = BitMapBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..max_t * 1.05, 0f64..(n as f64) * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the first bulk request")
        .y_desc("credentials finalized")
        .draw()?;
    chart.draw_series(LineSeries::new(
        points.iter().map(|(t, c)| (*t, *c as f64)),
        &RED,
    ))?;
    root.present()?;
    Ok(())
}
