//! INFO: Redis's sections and field names, from the shards' published counters.

use crate::commands::REDIS_VERSION;
use crate::runtime;
use crate::shard::Shard;
use coreshard_engine::Args;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

const DEFAULT_SECTIONS: &[&str] =
    &["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "keyspace"];

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes}B") } else { format!("{v:.2}{}", UNITS[u]) }
}

/// The INFO text for the sections named in `args` (default sections when none).
pub(crate) fn render(shard: &Shard, args: &Args) -> String {
    let asked: Vec<String> = args.iter_from(1).map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    let all = asked.iter().any(|a| a == "all" || a == "everything");
    // Redis lists Cluster among its default sections; outside cluster mode
    // coreshard shows it only when asked, so its default INFO stays as it was.
    let clustered = shard.cluster.is_some();
    let wants = |s: &str| {
        if asked.is_empty() || asked.iter().any(|a| a == "default") {
            return DEFAULT_SECTIONS.contains(&s) || (clustered && s == "cluster");
        }
        all || asked.iter().any(|a| a == s)
    };
    let sh = &shard.shared;
    let cfg = &shard.config;
    let mut out = String::with_capacity(2048);
    let mut section = |name: &str, body: &dyn Fn(&mut String)| {
        if wants(&name.to_ascii_lowercase()) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            let _ = write!(out, "# {name}\r\n");
            body(&mut out);
        }
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let uptime = now.as_secs().saturating_sub(sh.start_unix);
    section("Server", &|o| {
        let uname = uname();
        let _ = write!(
            o,
            "redis_version:{REDIS_VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\n\
             redis_mode:{}\r\nos:{uname}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\n\
             multiplexing_api:io_uring\r\natomicvar_api:c11-builtin\r\nprocess_id:{}\r\nprocess_supervised:no\r\n\
             run_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n\
             hz:{}\r\nconfigured_hz:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\n\
             coreshard_version:{}\r\nshards:{}\r\n",
            if clustered { "cluster" } else { "standalone" },
            std::process::id(),
            sh.run_id,
            sh.port.load(Relaxed),
            now.as_micros(),
            uptime / 86400,
            cfg.hz,
            cfg.hz,
            sh.executable,
            sh.config_file.as_deref().unwrap_or(""),
            env!("CARGO_PKG_VERSION"),
            shard.map.shards(),
        );
    });
    section("Clients", &|o| {
        let _ = write!(
            o,
            "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:{}\r\n\
             client_recent_max_output_buffer:{}\r\nblocked_clients:{}\r\ntracking_clients:0\r\nclients_in_timeout_table:{}\r\n",
            sh.sum(|s| &s.connected_clients),
            cfg.maxclients,
            sh.stats.iter().map(|s| s.recent_max_input.load(Relaxed)).max().unwrap_or(0),
            sh.stats.iter().map(|s| s.recent_max_output.load(Relaxed)).max().unwrap_or(0),
            sh.sum(|s| &s.blocked_clients),
            sh.sum(|s| &s.clients_in_timeout_table),
        );
    });
    section("Memory", &|o| {
        let rss = runtime::rss_bytes();
        let used = sh.stats.iter().map(|s| s.used_memory.load(Relaxed)).sum::<i64>().max(0) as u64;
        let peak = sh.peak_memory.load(Relaxed).max(used);
        let _ = write!(
            o,
            "used_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\n\
             used_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\n\
             maxmemory_policy:{}\r\nmem_fragmentation_ratio:1.00\r\nmem_not_counted_for_evict:{}\r\n\
             mem_allocator:mimalloc\r\nlazyfree_pending_objects:0\r\n",
            human(used),
            human(rss),
            human(peak),
            cfg.maxmemory,
            human(cfg.maxmemory),
            cfg.maxmemory_policy.as_str(),
            sh.sum(|s| &s.mem_not_counted_for_evict),
        );
    });
    section("Persistence", &|o| {
        let _ = write!(
            o,
            "loading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:0\r\n\
             rdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\n",
            sh.sum(|s| &s.dirty),
            sh.start_unix,
        );
    });
    section("Stats", &|o| {
        let _ = write!(
            o,
            "total_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\n\
             total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\n\
             evicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:0\r\npubsub_patterns:0\r\n\
             total_error_replies:{}\r\n",
            sh.sum(|s| &s.total_connections),
            sh.sum(|s| &s.total_commands),
            sh.sum(|s| &s.ops_per_sec),
            sh.sum(|s| &s.net_input_bytes),
            sh.sum(|s| &s.net_output_bytes),
            sh.sum(|s| &s.rejected_connections),
            sh.sum(|s| &s.expired_keys),
            sh.sum(|s| &s.evicted_keys),
            sh.sum(|s| &s.keyspace_hits),
            sh.sum(|s| &s.keyspace_misses),
            sh.sum(|s| &s.errors),
        );
        crate::repl::info_stats(shard, o);
    });
    section("Replication", &|o| crate::repl::info(shard, o));
    section("CPU", &|o| {
        let (user, sys) = runtime::process_cpu_seconds();
        let _ = write!(
            o,
            "used_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n",
        );
    });
    section("Cluster", &|o| {
        let _ = write!(o, "cluster_enabled:{}\r\n", u8::from(clustered));
        if clustered {
            // Slot migration's progress (repl/migrate.rs).
            crate::repl::migrate::info(shard, o);
            // Keys per shard of this node, every database: whether the
            // node's slots spread its keys over all its cores.
            let per_shard: Vec<String> =
                sh.stats.iter().map(|s| s.keys.iter().map(|k| k.load(Relaxed)).sum::<u64>().to_string()).collect();
            let _ = write!(o, "coreshard_shard_keys:{}\r\n", per_shard.join(","));
        }
    });
    section("Keyspace", &|o| {
        for db in 0..cfg.databases {
            let keys: u64 = sh.stats.iter().map(|s| s.keys.get(db).map_or(0, |k| k.load(Relaxed))).sum();
            let expires: u64 = sh.stats.iter().map(|s| s.expires.get(db).map_or(0, |k| k.load(Relaxed))).sum();
            if keys > 0 {
                let _ = write!(o, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        }
    });
    out
}

fn uname() -> String {
    // SAFETY: utsname is plain data and uname fills it with NUL-terminated strings.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "Linux".into();
        }
        let field = |f: &[libc::c_char]| std::ffi::CStr::from_ptr(f.as_ptr()).to_string_lossy().into_owned();
        format!("{} {} {}", field(&u.sysname), field(&u.release), field(&u.machine))
    }
}
