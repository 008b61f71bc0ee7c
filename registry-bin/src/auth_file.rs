//! An htpasswd authenticator that follows its file: when a Kubernetes
//! Secret update rewrites the file, the next requests see the new users,
//! without a restart. A file that fails to parse keeps the previous users.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use registry_auth::{
    Authenticator, Challenge, Credentials, Htpasswd, HtpasswdAuthenticator, HtpasswdError,
    Identity, Refusal,
};

/// htpasswd users reloaded from `path`.
#[derive(Debug)]
pub struct HtpasswdFile {
    path: PathBuf,
    realm: String,
    current: RwLock<Arc<HtpasswdAuthenticator>>,
}

impl HtpasswdFile {
    /// Loads the file once; fails when it cannot be used.
    pub fn load(path: &Path, realm: &str) -> Result<HtpasswdFile, HtpasswdError> {
        let users = Htpasswd::load(path)?;
        Ok(HtpasswdFile {
            path: path.to_owned(),
            realm: realm.to_owned(),
            current: RwLock::new(Arc::new(HtpasswdAuthenticator::new(users, realm))),
        })
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the file; on error the previous users stay in force.
    /// Returns the number of users now loaded.
    pub fn reload(&self) -> Result<usize, HtpasswdError> {
        let users = Htpasswd::load(&self.path)?;
        let count = users.len();
        let fresh = Arc::new(HtpasswdAuthenticator::new(users, self.realm.clone()));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(count)
    }

    fn current(&self) -> Arc<HtpasswdAuthenticator> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Authenticator for HtpasswdFile {
    fn authenticate(&self, credentials: Option<&Credentials>) -> Result<Identity, Refusal> {
        self.current().authenticate(credentials)
    }

    fn challenge(&self) -> Option<Challenge> {
        self.current().challenge()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials {
            username: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn reload_swaps_users_and_keeps_them_on_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let line = |u: &str, p: &str| format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap());
        std::fs::write(file.path(), line("old", "pw")).unwrap();
        let auth = HtpasswdFile::load(file.path(), "r").unwrap();
        assert!(auth.authenticate(Some(&creds("old", "pw"))).is_ok());

        std::fs::write(file.path(), line("new", "pw2")).unwrap();
        assert_eq!(auth.reload().unwrap(), 1);
        assert!(auth.authenticate(Some(&creds("old", "pw"))).is_err());
        assert_eq!(
            auth.authenticate(Some(&creds("new", "pw2"))),
            Ok(Identity::User("new".into()))
        );

        std::fs::write(file.path(), "broken line without colon\n").unwrap();
        assert!(auth.reload().is_err());
        assert!(auth.authenticate(Some(&creds("new", "pw2"))).is_ok());
    }
}
