use super::*;

/// Issue 12 item 10: built without the `zeroize` feature, the AES key schedule (the master
/// key, expanded) stays in freed memory after every seal and open.
#[test]
fn the_cipher_wipes_its_key_schedule_on_drop() {
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    wiped_on_drop::<aes::Aes256>();
    // The type Aes256Gcm encrypts with is exactly this one.
    let _: fn(&aes_gcm::AesGcm<aes::Aes256, aes_gcm::aead::consts::U12>) -> &Aes256Gcm = |c| c;
}

fn ring() -> Keyring {
    Keyring::from_hex("k1", &"11".repeat(32)).unwrap()
}

#[test]
fn seal_open_round_trip_and_aad_binding() {
    let k = ring();
    let s = Secret::from_bytes(b"12345678901234567890".to_vec());
    let sealed = k.seal("999800000001", &s).unwrap();
    assert_eq!(sealed.key_id, "k1");
    assert!(
        !sealed.blob.windows(20).any(|w| w == s.expose()),
        "ciphertext must not contain the plaintext"
    );
    assert_eq!(
        k.open("999800000001", &sealed).unwrap().expose(),
        s.expose()
    );
    assert!(
        matches!(k.open("999800000019", &sealed), Err(CryptoError::Open)),
        "a ciphertext moved to another token must not open"
    );
    let mut tampered = sealed.clone();
    let last = tampered.blob.len() - 1;
    tampered.blob[last] ^= 1;
    assert!(matches!(
        k.open("999800000001", &tampered),
        Err(CryptoError::Open)
    ));
}

#[test]
fn staff_secrets_are_bound_to_their_member_and_apart_from_tokens() {
    let k = ring();
    let s = Secret::from_bytes(vec![9; 20]);
    let sealed = k.seal_staff_totp(7, &s).unwrap();
    assert_eq!(k.open_staff_totp(7, &sealed).unwrap().expose(), s.expose());
    assert!(
        matches!(k.open_staff_totp(8, &sealed), Err(CryptoError::Open)),
        "a staff secret copied to another member's row must not open"
    );
    assert!(
        matches!(k.open("7", &sealed), Err(CryptoError::Open)),
        "nor as a token secret"
    );
}

#[test]
fn wrong_key_fails_check() {
    let k = ring();
    let check = k.key_check("k1").unwrap();
    k.verify_check("k1", &check).unwrap();
    let other = Keyring::from_hex("k1", &"22".repeat(32)).unwrap();
    assert!(
        other.verify_check("k1", &check).is_err(),
        "a different key under the same id must be detected"
    );
}

#[test]
fn key_file_is_created_private_and_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/master.key");
    let (k, created) = Keyring::load(KeySource::File {
        path: path.clone(),
        create: true,
    })
    .unwrap();
    assert!(created);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let first = k.current_id();
    let s = Secret::from_bytes(vec![7u8; 20]);
    let sealed = k.seal("u", &s).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = k.add_key().unwrap();
    assert_ne!(first, second);
    assert_eq!(k.current_id(), second);
    assert_eq!(
        k.open("u", &sealed).unwrap().expose(),
        s.expose(),
        "old keys stay usable after rotation"
    );
    assert!(matches!(
        Keyring::load(KeySource::File {
            path: dir.path().join("absent"),
            create: false
        }),
        Err(CryptoError::KeyFileMissing(_))
    ));
}

#[cfg(unix)]
#[test]
fn world_readable_key_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    std::fs::write(&path, format!("k1:{}\n", "33".repeat(32))).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        Keyring::load(KeySource::File {
            path,
            create: false
        }),
        Err(CryptoError::KeyFilePermissions { .. })
    ));
}

#[test]
fn malformed_env_keys_are_refused() {
    for bad in ["", "k1", "k1:zz", "k1:00", "bad id:".to_owned().as_str()] {
        assert!(
            Keyring::load(KeySource::Env(bad.into())).is_err(),
            "{bad:?} must be refused"
        );
    }
    let (k, _) = Keyring::load(KeySource::Env(format!(
        "a:{},b:{}",
        "01".repeat(32),
        "02".repeat(32)
    )))
    .unwrap();
    assert_eq!(k.current_id(), "b", "the last key listed is current");
    assert!(
        !format!("{k:?}").contains("0101"),
        "Debug must not show key material"
    );
}

/// `keys rotate` appended its line in place: to a key file without a final newline (restored
/// from a vault that strips it, written with `printf`), the new key was glued to the last
/// one, the file no longer parsed, and the next start refused to serve. The new line now comes
/// after a newline, under a lock on the file, and the whole file is checked before and after
/// (in place still: the file keeps its owner, mode and inode, as a bind-mounted file needs).
#[test]
fn a_key_added_to_a_file_without_a_final_newline_keeps_it_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let first = format!("k1:{}", hex::encode([1u8; 32]));
    {
        use std::io::Write as _;
        let mut f = open_private(&path, true).unwrap();
        f.write_all(first.as_bytes()).unwrap();
    }
    let (k, created) = Keyring::load(KeySource::File {
        path: path.clone(),
        create: false,
    })
    .unwrap();
    assert!(!created);
    let sealed = k.seal("u", &Secret::from_bytes(vec![9u8; 20])).unwrap();
    let second = k.add_key().unwrap();
    assert_eq!(k.current_id(), second);
    let (again, _) = Keyring::load(KeySource::File {
        path: path.clone(),
        create: false,
    })
    .expect("the file still parses after the rotation");
    assert_eq!(again.key_ids(), vec!["k1".to_owned(), second]);
    assert_eq!(again.open("u", &sealed).unwrap().expose(), &[9u8; 20]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "master.key" && !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "no temporary file left: {left:?}");
}

/// `keys add` puts a key on standby: opened with, not current; `keys activate` appends its line
/// again and it is current. A key named twice with two values, or only standby keys, are
/// refused.
#[test]
fn a_standby_key_opens_but_is_current_only_once_activated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let (ring, _) = Keyring::load(KeySource::File {
        path: path.clone(),
        create: true,
    })
    .unwrap();
    let old = ring.current_id();
    let standby = ring.add_standby_key().unwrap();
    assert_eq!(ring.current_id(), old, "on standby: not current");
    assert!(ring.key_ids().contains(&standby));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with(":standby\n"), "{}", text.lines().count());
    // Another process with the same file seals under the old key and opens under the new.
    let (other, _) = Keyring::load(KeySource::File {
        path: path.clone(),
        create: false,
    })
    .unwrap();
    assert_eq!(other.current_id(), old);
    let s = Secret::from_bytes(b"12345678901234567890".to_vec());
    assert!(ring.use_current(&standby));
    let sealed = ring.seal("uid", &s).unwrap();
    assert_eq!(sealed.key_id, standby);
    assert_eq!(other.open("uid", &sealed).unwrap().expose(), s.expose());
    assert!(!ring.use_current("nosuch"), "a key it does not have");

    ring.activate(&standby).unwrap();
    assert_eq!(ring.current_id(), standby);
    other.reload().unwrap();
    assert_eq!(other.current_id(), standby, "the file says so now");
    assert!(matches!(
        ring.activate("nosuch"),
        Err(CryptoError::UnknownKey(_))
    ));

    let k1 = "11".repeat(32);
    let k2 = "22".repeat(32);
    assert!(parse_keys(&format!("a:{k1}\nb:{k2}:standby")).is_ok_and(|s| s.current == "a"));
    assert!(
        parse_keys(&format!("a:{k1}\na:{k2}")).is_err(),
        "one id, two keys"
    );
    assert!(
        parse_keys(&format!("a:{k1}:standby")).is_err(),
        "none current"
    );
}

/// Only a key the file has on standby may be made current by the database: one the file has
/// superseded stays retired (an older database restored could name it newest), and a reload of
/// the file keeps the database's choice while the file still has the key on standby.
#[test]
fn only_a_standby_key_is_taken_from_the_database_and_a_reload_keeps_it() {
    let k1 = "11".repeat(32);
    let k2 = "22".repeat(32);
    let k3 = "33".repeat(32);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    std::fs::write(
        &path,
        format!("a:{k1}\nb:{k2}\nc:{k3}:standby\na:{k1}:standby\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (ring, _) = Keyring::load(KeySource::File {
        path: path.clone(),
        create: false,
    })
    .unwrap();
    assert_eq!(ring.current_id(), "b");
    assert!(ring.has_standby());
    assert!(
        !ring.use_current("a"),
        "superseded by b: retired, marked standby or not"
    );
    assert_eq!(ring.current_id(), "b");
    assert!(ring.use_current("c"));
    ring.reload().unwrap();
    assert_eq!(
        ring.current_id(),
        "c",
        "the database's choice survives a reload"
    );
    // The file activates c: current by the file now, and no longer on standby.
    ring.activate("c").unwrap();
    assert_eq!(ring.current_id(), "c");
    assert!(
        ring.has_standby(),
        "the file still shows two-step rotation was used"
    );
    let (plain, _) = Keyring::load(KeySource::File {
        path: dir.path().join("plain.key"),
        create: true,
    })
    .unwrap();
    assert!(!plain.has_standby());
}

/// The servers' minute-by-minute read of the key file only takes new keys: a file copied or
/// edited while they run (an old key's line removed before its secrets were re-sealed, a copy
/// read half-written) drops nothing and changes no current key.
#[test]
fn learning_new_keys_drops_and_changes_nothing() {
    let k1 = "11".repeat(32);
    let k2 = "22".repeat(32);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    std::fs::write(&path, format!("a:{k1}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (ring, _) = Keyring::load(KeySource::File {
        path: path.clone(),
        create: false,
    })
    .unwrap();
    std::fs::write(&path, format!("b:{k2}\n")).unwrap();
    assert_eq!(ring.learn_new_keys().unwrap(), vec!["b".to_owned()]);
    assert_eq!(ring.key_ids(), vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(ring.current_id(), "a", "not made current by the file");
    assert!(ring.use_current("b"), "the database may make it current");
    assert!(ring.learn_new_keys().unwrap().is_empty());
    ring.forget("c");
    assert_eq!(ring.key_ids().len(), 2);
}
