//! The open-file limit: every connection is a file descriptor, and the usual soft limit (1024)
//! is far below what the hard limit allows (often 2^20 in containers). Raising the soft limit to
//! the hard one needs no privilege.

use std::sync::OnceLock;

/// Raises this process's soft limit on open files to its hard limit, once per process, and
/// logs the result. Returns the soft limit in force afterwards (`None`: unlimited, or not a
/// Unix system).
pub fn raise_file_limit() -> Option<u64> {
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    *LIMIT.get_or_init(|| match raise_to_hard_limit() {
        Ok(Some(limit)) => {
            tracing::info!(file_descriptor_limit = limit, "open-file limit");
            Some(limit)
        }
        Ok(None) => {
            tracing::info!("open-file limit: none");
            None
        }
        Err((limit, error)) => {
            tracing::warn!(file_descriptor_limit = limit, %error, "could not raise the open-file limit");
            Some(limit)
        }
    })
}

/// Sets the soft limit to the hard limit. `Ok` carries the new soft limit; `Err` the one still
/// in force and why it could not be raised.
#[cfg(unix)]
fn raise_to_hard_limit() -> Result<Option<u64>, (u64, std::io::Error)> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limits = getrlimit(Resource::Nofile);
    if limits.current == limits.maximum {
        return Ok(limits.current);
    }
    let current = limits.current.unwrap_or(u64::MAX);
    match setrlimit(Resource::Nofile, Rlimit { current: limits.maximum, maximum: limits.maximum }) {
        Ok(()) => Ok(getrlimit(Resource::Nofile).current),
        Err(error) => Err((current, error.into())),
    }
}

#[cfg(not(unix))]
fn raise_to_hard_limit() -> Result<Option<u64>, (u64, std::io::Error)> {
    Ok(None)
}

#[cfg(all(test, unix))]
mod tests {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let before = getrlimit(Resource::Nofile);
        let Some(hard) = before.maximum else { return };
        // Lower the soft limit first, so there is something to raise (this test binary opens
        // few files; the integration tests run in a process of their own).
        let lowered = (hard / 2).min(512);
        if lowered == 0 {
            return;
        }
        setrlimit(Resource::Nofile, Rlimit { current: Some(lowered), maximum: Some(hard) }).unwrap();

        let raised = super::raise_to_hard_limit().unwrap();

        assert_eq!(raised, Some(hard));
        assert_eq!(getrlimit(Resource::Nofile).current, Some(hard));
    }
}
