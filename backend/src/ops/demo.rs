//! A newcomer's first run (issue 14 item 10): the start-up hints of `serve` on a database with
//! nobody in it (the exact commands that add a customer and a staff member), and
//! `otp-backend demo`, which seeds one clearly marked demo customer and one demo staff
//! supervisor with generated passwords, shown once, so the README's run command leads straight
//! into the journey in a browser.
//!
//! The rule for when demo accounts may be created is here, once: a demo account must never
//! appear silently in a production database. `demo` seeds only the embedded SQLite database
//! and only while it has no customers and no staff; `--force` is the explicit, deliberate
//! override (a trial PostgreSQL, a database already in use for testing). The accounts are
//! created once: a second run refuses (their passwords cannot be shown again), and `serve`
//! warns at every start while they exist.

use rand::Rng;
use zeroize::Zeroizing;

use crate::engine::staff::SecondFactor;
use crate::engine::{Actor, Engine};
use crate::store::DbKind;

/// The demo customer's internet-banking login ID.
pub const DEMO_CUSTOMER: &str = "demo0001";
/// The demo staff member's console login ID (a supervisor: every console action).
pub const DEMO_STAFF: &str = "demo-supervisor";
/// Shown on the customer screens' greeting: marked as a demo.
pub const DEMO_CUSTOMER_NAME: &str = "デモ 太郎（DEMO）";
pub const DEMO_STAFF_NAME: &str = "DEMO supervisor";
/// The registered address; without `[mail] smtp_host` mail is written to `data_dir/outbox`.
pub const DEMO_EMAIL: &str = "demo0001@example.com";
/// The audit trail's actor for what `demo` creates.
const DEMO_ACTOR: &str = "cli:demo";

/// Characters of generated passwords: lower-case letters and digits without look-alikes
/// (no 0/o, 1/l/i), so they can be typed from the terminal without doubt.
const PASSWORD_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// What `demo` created, with the passwords to show once (never logged).
pub struct Demo {
    pub customer_id: i64,
    pub login_password: Zeroizing<String>,
    pub confirmation_password: Zeroizing<String>,
    pub staff_id: i64,
    pub staff_password: Zeroizing<String>,
    pub second_factor: SecondFactor,
}

/// Why `demo` refused; the message says what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum DemoRefused {
    #[error(
        "the demo accounts already exist in this database ({DEMO_CUSTOMER}, {DEMO_STAFF}); their \
         passwords were shown once, when they were created. To start again, use an empty data \
         directory (OTP_DATA_DIR)"
    )]
    Exists,
    #[error(
        "refusing to create demo accounts in PostgreSQL, the production setup; on a trial \
         database, run `otp-backend demo --force`"
    )]
    Postgres,
    #[error(
        "refusing to create demo accounts in a database that is in use ({customers} customer(s), \
         {staff} staff member(s)): demo accounts go into an empty database only. To add them \
         anyway (a test database), run `otp-backend demo --force`"
    )]
    InUse { customers: i64, staff: i64 },
}

/// A password of `len` characters from the OS RNG.
fn generate(len: usize) -> Zeroizing<String> {
    let mut rng = rand::rngs::OsRng;
    let mut out = Zeroizing::new(String::with_capacity(len));
    for _ in 0..len {
        out.push(char::from(
            PASSWORD_ALPHABET[rng.gen_range(0..PASSWORD_ALPHABET.len())],
        ));
    }
    out
}

/// Whether the demo accounts exist in this database.
///
/// # Errors
/// The database is unavailable.
pub async fn present(engine: &Engine) -> anyhow::Result<bool> {
    let store = engine.store();
    Ok(store.customer_by_login(DEMO_CUSTOMER).await?.is_some()
        || store.staff_by_login(DEMO_STAFF).await?.is_some())
}

/// The part of the rule that needs no database: not PostgreSQL unless forced. Checked before
/// anything connects, so a mistaken `demo` against a production database does not even
/// migrate it.
///
/// # Errors
/// [`DemoRefused::Postgres`].
pub fn check_database(database_url: &str, force: bool) -> Result<(), DemoRefused> {
    if !force && DbKind::of_url(database_url) == Some(DbKind::Postgres) {
        return Err(DemoRefused::Postgres);
    }
    Ok(())
}

/// Seed the demo customer and staff supervisor, under the rule in the module's docs (the
/// caller has run [`check_database`] before opening the store).
///
/// # Errors
/// [`DemoRefused`] (as the error's root), or the engine's refusal.
pub async fn seed(engine: &Engine, force: bool) -> anyhow::Result<Demo> {
    if present(engine).await? {
        return Err(DemoRefused::Exists.into());
    }
    if !force {
        let (customers, staff) = engine.store().account_counts().await?;
        if customers > 0 || staff > 0 {
            return Err(DemoRefused::InUse { customers, staff }.into());
        }
    }
    let login_password = generate(12);
    let confirmation_password = generate(8);
    let staff_password = generate(16);
    let customer_id = engine
        .create_customer(
            DEMO_CUSTOMER,
            DEMO_CUSTOMER_NAME,
            Some(DEMO_EMAIL),
            login_password.clone(),
            confirmation_password.clone(),
            &Actor::new(DEMO_ACTOR, None),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
    let staff = engine
        .create_staff(
            DEMO_STAFF,
            DEMO_STAFF_NAME,
            "supervisor",
            staff_password.clone(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
    tracing::warn!(
        customer = DEMO_CUSTOMER,
        staff = DEMO_STAFF,
        "demo accounts created: for trying the system only"
    );
    Ok(Demo {
        customer_id,
        login_password,
        confirmation_password,
        staff_id: staff.id,
        staff_password,
        second_factor: staff.second_factor,
    })
}

/// The lines `serve` adds to its start-up when nobody can log in yet: the exact commands that
/// add a customer and a staff member (`cli` is how this binary was started, with `--config`
/// when it had one), and the demo when the database is one `demo` would seed.
pub fn first_run_hints(cli: &str, customers: i64, staff: i64, kind: DbKind) -> Vec<String> {
    let mut out = Vec::new();
    if customers == 0 {
        out.push(format!(
            "no customers yet; add one with: {cli} customer add --login-id ID --name NAME \
             --email ADDRESS (then type the login and confirmation passwords, one a line)"
        ));
    }
    if staff == 0 {
        out.push(format!(
            "no staff yet; add a supervisor with: {cli} staff add --login-id ID --name NAME \
             --role supervisor (then type the password; it prints the second factor once)"
        ));
    }
    if customers == 0 && staff == 0 && kind == DbKind::Sqlite {
        out.push(format!(
            "to try the system instead, create a demo customer and staff member with: {cli} demo"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_fit_the_fields_and_differ() {
        use crate::domain::fields;
        let a = generate(12);
        assert!(fields::is_login_password(&a), "{}", a.as_str());
        assert!(fields::is_confirmation_password(&generate(8)));
        assert!(fields::staff_password(&generate(16)).is_ok());
        assert_ne!(a, generate(12));
        assert!(!a.contains(['0', 'o', '1', 'l', 'i']));
    }

    #[test]
    fn hints_name_the_commands_only_when_needed() {
        let h = first_run_hints("otp-backend", 0, 0, DbKind::Sqlite);
        assert_eq!(h.len(), 3);
        assert!(h[0].contains("otp-backend customer add --login-id"));
        assert!(h[1].contains("otp-backend staff add --login-id"));
        assert!(h[2].contains("otp-backend demo"));
        let h = first_run_hints("otp-backend --config /etc/otp.toml", 0, 0, DbKind::Postgres);
        assert_eq!(h.len(), 2, "no demo on PostgreSQL: {h:?}");
        assert!(h[0].contains("otp-backend --config /etc/otp.toml customer add"));
        let h = first_run_hints("otp-backend", 3, 0, DbKind::Sqlite);
        assert_eq!(h.len(), 1);
        assert!(h[0].contains("staff add"));
        assert!(first_run_hints("otp-backend", 1, 1, DbKind::Sqlite).is_empty());
    }
}
