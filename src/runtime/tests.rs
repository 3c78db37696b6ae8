//! Tests of the runtime: the busy-port checks, start and shutdown of every shard, a shard
//! panic, and cross-thread wake-ups and IO progress on every driver.

use super::*;
use crate::config::{ListenerConfig, Protocol};
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn test_config(shards: usize) -> Config {
    Config {
        listeners: vec![ListenerConfig {
            name: "listen".into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            protocol: Protocol::Mqtt,
            allow_anonymous: true,
            tls: None,
        }],
        shards: std::num::NonZeroUsize::new(shards).unwrap_or(std::num::NonZeroUsize::MIN),
        ..Config::default()
    }
}

#[test]
fn a_port_that_is_already_listened_on_is_refused() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0");
    let Ok(taken) = taken else { return };
    let Ok(addr) = taken.local_addr() else { return };
    let mut config = test_config(1);
    config.listeners[0].bind = addr;
    let result = run::<(), _, _>(config, |_| async {});
    assert!(
        matches!(result, Err(RuntimeError::AddressInUse(a)) if a == addr),
        "{result:?}"
    );
}

#[test]
fn a_reuse_port_listener_on_the_port_is_refused_too() {
    let addr = match probe_listen_address(SocketAddr::from(([127, 0, 0, 1], 0))) {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    let (mut rt, _) = match build_shard_runtime(&Config::default().runtime) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    rt.block_on(async {
        let other_broker = bind_shard_listener(addr);
        assert!(other_broker.is_ok());
        assert!(matches!(
            probe_listen_address(addr),
            Err(RuntimeError::AddressInUse(_))
        ));
    });
}

#[test]
fn every_shard_starts_with_its_own_mesh_ends_and_stops_on_trigger() {
    let started = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&started);
    let result = run::<u32, _, _>(test_config(2), move |setup| {
        let seen = Arc::clone(&seen);
        async move {
            assert_eq!(setup.shards, 2);
            assert_eq!(setup.mesh.id(), setup.id);
            assert!(
                setup.listeners[0]
                    .socket
                    .local_addr()
                    .is_ok_and(|a| a.port() != 0)
            );
            if seen.fetch_add(1, Ordering::SeqCst) == 1 {
                setup.shutdown.trigger();
            }
            // Two waiters on one shard are both released.
            let (a, b) = (setup.shutdown.wait(), setup.shutdown.wait());
            a.await;
            b.await;
            assert!(setup.shutdown.is_triggered());
        }
    });
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(started.load(Ordering::SeqCst), 2);
}

#[test]
fn shards_on_one_port_share_the_accepted_connections() {
    let result = run::<(), _, _>(test_config(2), |setup| async move {
        let addr = match setup.listeners[0].socket.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        if setup.id == 0 {
            // Connections to the shared port are accepted by some shard.
            for _ in 0..8 {
                let conn = monoio::net::TcpStream::connect(addr).await;
                assert!(conn.is_ok());
            }
            setup.shutdown.trigger();
        }
        loop {
            monoio::select! {
                _ = setup.shutdown.wait() => break,
                accepted = setup.listeners[0].socket.accept() => assert!(accepted.is_ok()),
            }
        }
    });
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn a_panicking_shard_is_reported_and_the_others_are_stopped() {
    let result = run::<(), _, _>(test_config(2), |setup| async move {
        if setup.id == 1 {
            panic!("shard 1 fails on purpose");
        }
        setup.shutdown.wait().await;
    });
    assert!(
        matches!(result, Err(RuntimeError::ShardPanicked(1))),
        "{result:?}"
    );
}

#[test]
fn the_preferred_driver_wakes_across_threads() {
    let mut mesh = mesh::build::<u32>(2, 8);
    let (Some(mut rx), Some(mut tx)) = (mesh.pop(), mesh.pop()) else {
        panic!("two ends");
    };
    let receiver = std::thread::spawn(move || {
        let (mut rt, kind) = match build_shard_runtime(&Config::default().runtime) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        rt.block_on(async move {
            let mut got = 0;
            while got < 1000 {
                let woke = monoio::time::timeout(Duration::from_secs(10), rx.wait()).await;
                assert!(woke.is_ok(), "no wake-up on {kind}");
                got += rx.drain(usize::MAX, |_, _| {});
            }
        });
    });
    for v in 0..1000 {
        while tx.try_send(1, v).is_err() {
            std::thread::yield_now();
        }
        tx.flush_wakes();
        if v % 100 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(receiver.join().is_ok());
}

fn runtimes_of_every_kind() -> Vec<(ShardRuntime, &'static str)> {
    let mut out = Vec::new();
    let mut add = |b: Option<io_uring::Builder>, name| {
        let mut rb = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new();
        if let Some(b) = b {
            rb = rb.uring_builder(b);
        }
        if let Ok(rt) = rb.enable_timer().build() {
            out.push((rt.into(), name));
        }
    };
    let mut defer = io_uring::IoUring::builder();
    defer.setup_defer_taskrun().setup_single_issuer();
    add(Some(defer), "io_uring DEFER_TASKRUN");
    let mut coop = io_uring::IoUring::builder();
    coop.setup_coop_taskrun();
    add(Some(coop), "io_uring COOP_TASKRUN");
    add(None, "io_uring");
    if let Ok(rt) = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
    {
        out.push((rt.into(), "legacy"));
    }
    out
}

#[test]
fn io_completes_while_a_task_keeps_yielding_on_every_driver() {
    for (mut rt, name) in runtimes_of_every_kind() {
        rt.block_on(async move {
            let listener = match bind_shard_listener(SocketAddr::from(([127, 0, 0, 1], 0))) {
                Ok(l) => l,
                Err(e) => panic!("{name}: {e}"),
            };
            let Ok(addr) = listener.local_addr() else {
                panic!("{name}: no local address");
            };
            let accepted = Rc::new(Cell::new(false));
            let flag = Rc::clone(&accepted);
            monoio::spawn(async move {
                let conn = listener.accept().await;
                flag.set(conn.is_ok());
            });
            // The connection arrives while the accept is already queued in the kernel.
            let client = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                std::net::TcpStream::connect(addr)
            });
            let started = std::time::Instant::now();
            while !accepted.get() && started.elapsed() < Duration::from_secs(3) {
                yield_now().await;
            }
            assert!(accepted.get(), "{name}: the accept never completed");
            assert!(client.join().is_ok_and(|c| c.is_ok()));
        });
    }
}
