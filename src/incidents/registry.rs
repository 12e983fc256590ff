//! The registry: every known incident, as an immutable snapshot that
//! requests read without locking for long, replaced whole on each change.
//!
//! Sources: the incidents shipped in the binary (`incidents/*.toml`), any
//! TOML files in `--incidents DIR`, and incidents created through the admin
//! API, which are stored in the catalog database. File incidents are
//! read-only through the API: their source of truth is the file.

use std::path::Path;
use std::sync::{Arc, RwLock};

use super::{BUILTIN, Incident, IncidentSpec, InvalidIncident, Origin, Outcome, parse_toml};
use crate::catalog::{Catalog, CatalogError};

/// All incidents, sorted by window start.
pub type Snapshot = Arc<Vec<Arc<Incident>>>;

/// Why an admin change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Invalid(#[from] InvalidIncident),
    #[error("incident {0:?} already exists")]
    Conflict(String),
    #[error("incident {0:?} is defined in a file; edit the file instead")]
    ReadOnly(String),
    #[error("no incident {0:?}")]
    NotFound(String),
    #[error("the path's id {0:?} differs from the body's id {1:?}")]
    IdMismatch(String, String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// The incident registry (cheap to clone).
#[derive(Clone)]
pub struct Registry {
    current: Arc<RwLock<Snapshot>>,
    catalog: Catalog,
}

impl Registry {
    /// Loads shipped, configured and stored incidents. A bad file or a
    /// duplicate id stops the start, naming the file.
    pub async fn load(catalog: Catalog, dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut all: Vec<Arc<Incident>> = Vec::new();
        for (name, text) in BUILTIN {
            all.push(Arc::new(
                parse_toml(name, text).map_err(anyhow::Error::msg)?,
            ));
        }
        if let Some(dir) = dir {
            let mut paths: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| anyhow::anyhow!("--incidents {}: {e}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            paths.sort();
            for path in paths {
                let name = path.display().to_string();
                let text =
                    std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
                let incident = parse_toml(&name, &text).map_err(anyhow::Error::msg)?;
                if all.iter().any(|i| i.id() == incident.id()) {
                    anyhow::bail!("{name}: incident id {:?} is defined twice", incident.id());
                }
                all.push(Arc::new(incident));
            }
        }
        for json in catalog.incident_specs().await? {
            let spec: IncidentSpec = serde_json::from_str(&json)
                .map_err(|e| anyhow::anyhow!("stored incident is unreadable: {e}"))?;
            let incident = spec.validate(Origin::Admin)?;
            if all.iter().any(|i| i.id() == incident.id()) {
                tracing::warn!(
                    id = incident.id(),
                    "a file now defines this stored incident; the file wins"
                );
                continue;
            }
            all.push(Arc::new(incident));
        }
        let registry = Self {
            current: Arc::new(RwLock::new(Arc::new(Vec::new()))),
            catalog,
        };
        registry.replace(all);
        Ok(registry)
    }

    fn replace(&self, mut all: Vec<Arc<Incident>>) {
        all.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.id().cmp(b.id())));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(all);
    }

    /// Every incident, as of now.
    pub fn snapshot(&self) -> Snapshot {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the incidents stored in the catalog (another replica
    /// changed one); file incidents stay as loaded. A stored incident that
    /// no longer validates is skipped with a warning, not fatal: the rest
    /// of the registry must go on explaining.
    pub async fn reload_stored(&self) -> Result<(), CatalogError> {
        let mut all: Vec<Arc<Incident>> = self
            .snapshot()
            .iter()
            .filter(|i| i.origin == Origin::File)
            .cloned()
            .collect();
        for json in self.catalog.incident_specs().await? {
            let incident = serde_json::from_str::<IncidentSpec>(&json)
                .map_err(|e| e.to_string())
                .and_then(|s| s.validate(Origin::Admin).map_err(|e| e.to_string()));
            match incident {
                Ok(i) if !all.iter().any(|x| x.id() == i.id()) => all.push(Arc::new(i)),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "a stored incident is unreadable; skipped"),
            }
        }
        self.replace(all);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<Arc<Incident>> {
        self.snapshot().iter().find(|i| i.id() == id).cloned()
    }

    /// Adds an incident (admin API). Stored before it takes effect.
    pub async fn create(&self, spec: IncidentSpec) -> Result<Arc<Incident>, RegistryError> {
        let incident = Arc::new(spec.validate(Origin::Admin)?);
        if self.get(incident.id()).is_some() {
            return Err(RegistryError::Conflict(incident.id().into()));
        }
        self.store(&incident).await?;
        let mut all = self.snapshot().as_ref().clone();
        all.push(incident.clone());
        self.replace(all);
        Ok(incident)
    }

    /// Replaces an admin incident's definition.
    pub async fn update(
        &self,
        id: &str,
        spec: IncidentSpec,
    ) -> Result<Arc<Incident>, RegistryError> {
        if spec.id != id {
            return Err(RegistryError::IdMismatch(id.into(), spec.id));
        }
        let old = self
            .get(id)
            .ok_or_else(|| RegistryError::NotFound(id.into()))?;
        if old.origin == Origin::File {
            return Err(RegistryError::ReadOnly(id.into()));
        }
        let incident = Arc::new(spec.validate(Origin::Admin)?);
        self.store(&incident).await?;
        let all = self
            .snapshot()
            .iter()
            .map(|i| {
                if i.id() == id {
                    incident.clone()
                } else {
                    i.clone()
                }
            })
            .collect();
        self.replace(all);
        Ok(incident)
    }

    /// Marks an admin incident resolved, optionally with its final outcome.
    pub async fn resolve(
        &self,
        id: &str,
        outcome: Option<Outcome>,
    ) -> Result<Arc<Incident>, RegistryError> {
        let old = self
            .get(id)
            .ok_or_else(|| RegistryError::NotFound(id.into()))?;
        let mut spec = old.spec.clone();
        spec.status = super::IncidentStatus::Resolved;
        if let Some(o) = outcome {
            spec.outcome = o;
        }
        self.update(id, spec).await
    }

    async fn store(&self, incident: &Incident) -> Result<(), RegistryError> {
        let json = serde_json::to_string(&incident.spec).unwrap_or_default();
        self.catalog
            .save_incident_spec(incident.id(), &json)
            .await?;
        Ok(())
    }
}
