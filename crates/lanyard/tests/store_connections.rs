//! The store's connection pool on both backends: a transaction dropped without commit leaves
//! nothing behind and does not block the next writer, a statement abandoned mid-flight (a
//! dropped request) does not poison the connection it ran on, and many more concurrent callers
//! than connections all finish.

mod common;

use std::future::Future;
use std::task::Poll;

use lanyard::store::{Doc, Store};
use serde_json::json;

async fn open(db: Option<String>, dir: &tempfile::TempDir) -> Store {
    let url = db.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("t.db").display()));
    Store::connect(&url).await.expect("store opens")
}

/// Ids are unique per run: the PostgreSQL database outlives the test.
fn doc(env: &str, id: &str) -> Doc {
    let id = format!("{env}/{id}");
    Doc::new("connectionTest", &id, env, env, json!({ "id": id }))
}

/// Polls a future once and drops it: what happens to a request's database call when the
/// client goes away mid-statement.
async fn abandon<F: Future>(fut: F) {
    let mut fut = Box::pin(fut);
    std::future::poll_fn(|cx| {
        let _ = fut.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
}

async fn exists(store: &Store, env: &str, id: &str) -> bool {
    store
        .read()
        .get("connectionTest", env, &format!("{env}/{id}"))
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_transactions_roll_back_and_free_the_writer() {
    for db in common::backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(db, &dir).await;
        let env = uuid::Uuid::new_v4().to_string();

        let mut tx = store.begin().await.unwrap();
        tx.insert(&doc(&env, "dropped"), &[]).await.unwrap();
        drop(tx);
        // The next writer waits for the rollback (SQLite's write lock), then proceeds.
        let mut tx = store.begin().await.unwrap();
        assert!(
            tx.get("connectionTest", &env, &format!("{env}/dropped"))
                .await
                .unwrap()
                .is_none(),
            "{}: the dropped insert is rolled back",
            store.dialect_name()
        );
        tx.insert(&doc(&env, "kept"), &[]).await.unwrap();
        tx.commit().await.unwrap();
        assert!(exists(&store, &env, "kept").await);
        assert!(!exists(&store, &env, "dropped").await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_statements_do_not_poison_the_pool() {
    for db in common::backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(db, &dir).await;
        let env = uuid::Uuid::new_v4().to_string();
        let name = store.dialect_name();

        // A read abandoned mid-flight, then reads and writes as usual.
        for _ in 0..20 {
            abandon(async {
                let mut r = store.read();
                r.get("connectionTest", &env, &format!("{env}/nothing"))
                    .await
            })
            .await;
        }
        assert!(!exists(&store, &env, "nothing").await, "{name}");

        // A transaction abandoned in the middle of a statement: neither its finished nor its
        // unfinished write survives, and the writer lock is free again.
        for i in 0..5 {
            let mut tx = store.begin().await.unwrap();
            tx.insert(&doc(&env, &format!("first-{i}")), &[])
                .await
                .unwrap();
            abandon(tx.insert(&doc(&env, &format!("second-{i}")), &[])).await;
            drop(tx);
        }
        let mut tx = store.begin().await.unwrap();
        tx.insert(&doc(&env, "after"), &[]).await.unwrap();
        tx.commit().await.unwrap();
        for i in 0..5 {
            assert!(!exists(&store, &env, &format!("first-{i}")).await, "{name}");
            assert!(
                !exists(&store, &env, &format!("second-{i}")).await,
                "{name}"
            );
        }
        assert!(exists(&store, &env, "after").await, "{name}");

        // Runtime items (outside transactions) after abandoned ones.
        abandon(store.runtime_put("connTest", &env, &env, &json!({}), i64::MAX / 2)).await;
        store
            .runtime_upsert("connTest", &env, &env, &json!({ "n": 1 }), i64::MAX / 2)
            .await
            .unwrap();
        let item = store.runtime_get("connTest", &env).await.unwrap().unwrap();
        assert_eq!(item.data["n"], 1, "{name}");
        assert!(store.runtime_delete("connTest", &env).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_callers_than_connections_all_finish() {
    for db in common::backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(db, &dir).await;
        let env = uuid::Uuid::new_v4().to_string();
        let mut tasks = Vec::new();
        for i in 0..60 {
            let (store, env) = (store.clone(), env.clone());
            tasks.push(tokio::spawn(async move {
                let id = format!("doc-{i}");
                let mut tx = store.begin().await.unwrap();
                tx.insert(&doc(&env, &id), &[]).await.unwrap();
                // Every third writer gives up: its insert must vanish.
                if i % 3 == 0 {
                    drop(tx);
                } else {
                    tx.commit().await.unwrap();
                }
                // Readers in between, each holding a connection only for its statement.
                exists(&store, &env, &id).await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let seen = t.await.unwrap();
            assert_eq!(seen, i % 3 != 0, "{}: doc-{i}", store.dialect_name());
        }
        let mut r = store.read();
        let all = r.children("connectionTest", &env, &env).await.unwrap();
        assert_eq!(all.len(), 40, "{}", store.dialect_name());
        store.close().await;
    }
}

/// Runtime items written and read several at a time (one statement each way): a put of several
/// is all or nothing, and a read answers in the order asked, `None` for what is missing or
/// expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_items_several_at_a_time() {
    use lanyard::store::runtime::NewItem;
    for db in common::backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(db, &dir).await;
        let env = uuid::Uuid::new_v4().to_string();
        let (a, b, old) = (format!("{env}/a"), format!("{env}/b"), format!("{env}/old"));
        let now = lanyard::clock::unix();
        let (da, db_, dold) = (json!({ "n": 1 }), json!({ "n": 2 }), json!({ "n": 3 }));
        store
            .runtime_put_many(&[
                NewItem {
                    kind: "testA",
                    id: &a,
                    env_id: &env,
                    data: &da,
                    expires_at: now + 60,
                },
                NewItem {
                    kind: "testB",
                    id: &b,
                    env_id: &env,
                    data: &db_,
                    expires_at: now + 60,
                },
                NewItem {
                    kind: "testA",
                    id: &old,
                    env_id: &env,
                    data: &dold,
                    expires_at: now - 1,
                },
            ])
            .await
            .unwrap();
        let got = store
            .runtime_get_many(&[
                ("testB", &b),
                ("testA", &old),
                ("testA", "missing"),
                ("testA", &a),
            ])
            .await
            .unwrap();
        let ns: Vec<Option<i64>> = got
            .iter()
            .map(|i| i.as_ref().map(|i| i.data["n"].as_i64().unwrap()))
            .collect();
        assert_eq!(ns, vec![Some(2), None, None, Some(1)]);
        // The same id under another kind is another item.
        assert!(store.runtime_get("testB", &a).await.unwrap().is_none());

        // One duplicate in a put of several: nothing of that put is stored.
        let (c, dc) = (format!("{env}/c"), json!({ "n": 4 }));
        let dup = store
            .runtime_put_many(&[
                NewItem {
                    kind: "testA",
                    id: &c,
                    env_id: &env,
                    data: &dc,
                    expires_at: now + 60,
                },
                NewItem {
                    kind: "testB",
                    id: &b,
                    env_id: &env,
                    data: &dc,
                    expires_at: now + 60,
                },
            ])
            .await;
        assert!(dup.is_err());
        assert!(store.runtime_get("testA", &c).await.unwrap().is_none());
        assert_eq!(
            store.runtime_get("testB", &b).await.unwrap().unwrap().data["n"],
            2
        );
    }
}
