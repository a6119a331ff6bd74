//! Internet-banking customers (their password lockout counters: `throttles`).

use sqlx::FromRow;

use super::{Result, Store, Tx};

#[derive(Debug, Clone, FromRow)]
pub struct CustomerRow {
    pub id: i64,
    pub login_id: String,
    pub name: String,
    pub email: Option<String>,
    pub login_password_hash: String,
    pub confirmation_password_hash: String,
    pub reissue_waived: i64,
    pub created_at: i64,
    pub password_failures: i64,
    pub password_locked_at: Option<i64>,
}

pub struct NewCustomer<'a> {
    pub login_id: &'a str,
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub login_password_hash: &'a str,
    pub confirmation_password_hash: &'a str,
    pub now: i64,
}

impl Store {
    pub async fn customer_by_login(&self, login_id: &str) -> Result<Option<CustomerRow>> {
        Ok(
            sqlx::query_as::<_, CustomerRow>("SELECT * FROM customers WHERE login_id = $1")
                .bind(login_id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    pub async fn customer_by_id(&self, id: i64) -> Result<Option<CustomerRow>> {
        Ok(
            sqlx::query_as::<_, CustomerRow>("SELECT * FROM customers WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await?,
        )
    }
}

impl Tx<'_> {
    /// # Errors
    /// [`StoreError::Conflict`] when the login ID exists.
    pub async fn insert_customer(&mut self, c: &NewCustomer<'_>) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO customers (login_id, name, email, login_password_hash, confirmation_password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(c.login_id)
        .bind(c.name)
        .bind(c.email)
        .bind(c.login_password_hash)
        .bind(c.confirmation_password_hash)
        .bind(c.now)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(id)
    }

    pub async fn customer(&mut self, id: i64) -> Result<Option<CustomerRow>> {
        Ok(
            sqlx::query_as::<_, CustomerRow>("SELECT * FROM customers WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *self.0)
                .await?,
        )
    }

    /// Change the registered e-mail address.
    pub async fn set_customer_email(&mut self, customer_id: i64, email: &str) -> Result<()> {
        sqlx::query("UPDATE customers SET email = $1 WHERE id = $2")
            .bind(email)
            .bind(customer_id)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    pub async fn set_reissue_waived(&mut self, customer_id: i64, waived: bool) -> Result<()> {
        sqlx::query("UPDATE customers SET reissue_waived = $1 WHERE id = $2")
            .bind(i64::from(waived))
            .bind(customer_id)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }
}
