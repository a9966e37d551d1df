//! CPU spent per event, by the service and by PostgreSQL: on a shared machine where
//! other work takes cores away, events per second move with the neighbours, while the
//! CPU an event costs stays close to what the code does.

use std::collections::HashMap;

use crate::cluster::Scrape;

/// `/proc/<pid>/stat` counts in USER_HZ, 100 on Linux whatever the kernel's tick rate.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU ticks (user + system) of every PostgreSQL process, by pid.
fn postgres_ticks() -> HashMap<u32, u64> {
    let mut ticks = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return ticks };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The command name is in parentheses and may hold spaces: fields follow its end.
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        if !head.ends_with("(postgres") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        if let (Some(u), Some(s)) = (fields.get(11), fields.get(12))
            && let (Ok(u), Ok(s)) = (u.parse::<u64>(), s.parse::<u64>())
        {
            ticks.insert(pid, u + s);
        }
    }
    ticks
}

/// CPU seconds of the service instances and of PostgreSQL at one instant.
pub struct CpuSample {
    service: f64,
    postgres: HashMap<u32, u64>,
    /// The largest peak RSS of one instance, read from the same scrapes.
    pub peak_rss: f64,
}

/// CPU seconds used between two samples.
pub struct CpuUsed {
    pub service: f64,
    pub postgres: f64,
}

impl CpuUsed {
    /// Milliseconds of CPU (service and PostgreSQL together) per 1,000 events, for a
    /// phase that recorded `rate` events a second throughout `seconds`.
    pub fn ms_per_1000(&self, rate: f64, seconds: f64) -> f64 {
        if rate <= 0.0 || seconds <= 0.0 {
            return 0.0;
        }
        (self.service + self.postgres) / (rate * seconds) * 1_000_000.0
    }
}

impl CpuSample {
    /// The instances' CPU from `scrapes` (one per instance), PostgreSQL's from `/proc` now.
    pub fn of(scrapes: &[Scrape]) -> Self {
        let (mut service, mut peak_rss) = (0.0, 0.0_f64);
        for scrape in scrapes {
            service += scrape.sum("process_cpu_seconds_total", &[]);
            peak_rss = peak_rss.max(scrape.sum("process_resident_memory_peak_bytes", &[]));
        }
        Self { service, postgres: postgres_ticks(), peak_rss }
    }

    /// What was used since `self`; a PostgreSQL process started since counts in full,
    /// one that ended is left out (the phases keep their connections open).
    pub fn used_until(&self, later: &CpuSample) -> CpuUsed {
        let postgres: u64 = later
            .postgres
            .iter()
            .map(|(pid, t)| t.saturating_sub(self.postgres.get(pid).copied().unwrap_or(0)))
            .sum();
        CpuUsed { service: later.service - self.service, postgres: postgres as f64 / TICKS_PER_SECOND }
    }
}
