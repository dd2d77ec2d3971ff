//! A generated node_exporter-like exposition (~2,000 series with HELP and TYPE), shared by
//! the benchmarks of the scrape path so that they measure the same body.

use promcore::scrape::parser::Format;

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

pub fn body(format: Format) -> (String, usize) {
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut out = String::new();
    let mut samples = 0;
    let mut family = |f: Family, series: &mut dyn Iterator<Item = String>, out: &mut String| {
        out.push_str(&format!(
            "# HELP {} {}\n# TYPE {} {}\n",
            f.name, f.help, f.name, f.kind
        ));
        for labels in series {
            let value = match rnd() % 4 {
                0 => format!("{}", rnd() % 100_000),
                1 => format!("{}.{:02}", rnd() % 10_000_000, rnd() % 100),
                2 => format!("{:e}", (rnd() % 100_000_000) as f64 * 1.7),
                _ => "0".to_string(),
            };
            let suffix = if f.kind == "counter" && format == Format::OpenMetrics {
                "_total"
            } else {
                ""
            };
            out.push_str(&format!("{}{suffix}{labels} {value}\n", f.name));
            samples += 1;
        }
    };
    let modes = [
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
    ];
    for name in ["node_cpu_seconds", "node_cpu_guest_seconds"] {
        family(
            Family {
                name,
                kind: "counter",
                help: "Seconds the CPUs spent in each mode.",
            },
            &mut (0..64).flat_map(|cpu| {
                modes
                    .iter()
                    .map(move |m| format!("{{cpu=\"{cpu}\",mode=\"{m}\"}}"))
            }),
            &mut out,
        );
    }
    let nets = [
        "receive_bytes",
        "receive_packets",
        "receive_errs",
        "receive_drop",
        "transmit_bytes",
        "transmit_packets",
        "transmit_errs",
        "transmit_drop",
        "receive_multicast",
        "transmit_colls",
    ];
    for n in nets {
        let name: &'static str = Box::leak(format!("node_network_{n}").into_boxed_str());
        family(
            Family {
                name,
                kind: "counter",
                help: "Network device statistic.",
            },
            &mut (0..24).map(|d| format!("{{device=\"eth{d}\"}}")),
            &mut out,
        );
    }
    let disks = [
        "reads_completed",
        "reads_merged",
        "read_bytes",
        "read_time_seconds",
        "writes_completed",
        "writes_merged",
        "written_bytes",
        "write_time_seconds",
        "io_now",
        "io_time_seconds",
        "io_time_weighted_seconds",
        "discards_completed",
        "discards_merged",
        "discarded_sectors",
        "discard_time_seconds",
        "flush_requests",
        "flush_requests_time_seconds",
    ];
    for n in disks {
        let name: &'static str = Box::leak(format!("node_disk_{n}").into_boxed_str());
        family(
            Family {
                name,
                kind: "counter",
                help: "Disk statistic from /proc/diskstats.",
            },
            &mut (0..24).map(|d| format!("{{device=\"nvme{}n{}\"}}", d / 4, d % 4)),
            &mut out,
        );
    }
    for n in [
        "avail_bytes",
        "free_bytes",
        "size_bytes",
        "files",
        "files_free",
        "readonly",
        "device_error",
    ] {
        let name: &'static str = Box::leak(format!("node_filesystem_{n}").into_boxed_str());
        family(
            Family {
                name,
                kind: "gauge",
                help: "Filesystem statistic.",
            },
            &mut (0..16).map(|d| {
                format!(
                    "{{device=\"/dev/nvme0n1p{d}\",fstype=\"ext4\",mountpoint=\"/srv/data{d}\"}}"
                )
            }),
            &mut out,
        );
    }
    for i in 0..300 {
        let name: &'static str = Box::leak(format!("node_vmstat_counter_{i}").into_boxed_str());
        family(
            Family {
                name,
                kind: "untyped",
                help: "/proc/vmstat information field.",
            },
            &mut std::iter::once(String::new()),
            &mut out,
        );
    }
    if format == Format::OpenMetrics {
        out = out.replace(" untyped\n", " unknown\n");
        out.push_str("# EOF\n");
    }
    (out, samples)
}
