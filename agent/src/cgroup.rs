//! Container and Kubernetes pod attribution from `/proc/<pid>/cgroup`.
//!
//! Handles cgroup v1 and v2 with the systemd and cgroupfs drivers, and the containerd, CRI-O
//! and Docker naming schemes.

/// What a cgroup path says about a process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// Container id (64 hex digits for the common runtimes).
    pub container: Option<String>,
    /// Kubernetes pod UID (with dashes).
    pub pod_uid: Option<String>,
}

/// Parses the content of `/proc/<pid>/cgroup`.
pub fn attribute(content: &str) -> Attribution {
    // Prefer the unified hierarchy line, else any v1 line that names a container.
    let mut best = Attribution::default();
    for line in content.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(_), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let a = attribute_path(path);
        if a.container.is_some() || a.pod_uid.is_some() {
            if a.container.is_some() && a.pod_uid.is_some() {
                return a;
            }
            if best.container.is_none() {
                best = a;
            }
        }
    }
    best
}

/// Parses one cgroup path.
pub fn attribute_path(path: &str) -> Attribution {
    let mut out = Attribution::default();
    for seg in path.split('/') {
        if let Some(uid) = pod_uid(seg) {
            out.pod_uid = Some(uid);
            continue;
        }
        if let Some(id) = container_id(seg) {
            out.container = Some(id);
        }
    }
    // Outside Kubernetes a bare 64-hex segment only counts under a container runtime's tree.
    if out.pod_uid.is_none() && out.container.is_some() {
        let runtime = ["docker", "containerd", "crio", "libpod", "system.slice", "machine.slice", "default"];
        if !path.split('/').any(|s| runtime.iter().any(|r| s.starts_with(r) || s.ends_with(".scope"))) {
            out.container = None;
        }
    }
    out
}

fn pod_uid(seg: &str) -> Option<String> {
    // systemd: kubepods-burstable-pod<uid_with_underscores>.slice; cgroupfs: pod<uid>
    let s = seg.strip_suffix(".slice").unwrap_or(seg);
    let idx = s.rfind("pod")?;
    let uid = &s[idx + 3..];
    let uid = uid.replace('_', "-");
    let ok = uid.len() == 36 && uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') && uid.matches('-').count() == 4;
    (ok && (idx == 0 || s[..idx].ends_with('-'))).then_some(uid)
}

fn container_id(seg: &str) -> Option<String> {
    let s = seg.strip_suffix(".scope").unwrap_or(seg);
    let s = ["cri-containerd-", "crio-", "docker-", "libpod-"].iter().find_map(|p| s.strip_prefix(p)).unwrap_or(s);
    (s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f1c2a9b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a";
    const UID: &str = "6b1f0d7e-2c4a-4f7e-9a51-0c7d2e8b9f13";

    fn both() -> Attribution {
        Attribution { container: Some(ID.into()), pod_uid: Some(UID.into()) }
    }

    #[test]
    fn kubernetes_layouts() {
        let u = UID.replace('-', "_");
        for line in [
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{ID}.scope"
            ),
            format!("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice/crio-{ID}.scope"),
            format!("0::/kubepods.slice/kubepods-pod{u}.slice/docker-{ID}.scope"),
            format!("0::/kubepods/burstable/pod{UID}/{ID}"),
            format!("0::/kubepods/pod{UID}/{ID}"),
            format!(
                "12:memory:/kubepods/besteffort/pod{UID}/{ID}\n11:cpu,cpuacct:/kubepods/besteffort/pod{UID}/{ID}\n0::/"
            ),
        ] {
            assert_eq!(attribute(&line), both(), "{line}");
        }
    }

    #[test]
    fn plain_containers_and_host_processes() {
        let docker = attribute(&format!("0::/system.slice/docker-{ID}.scope"));
        assert_eq!(docker, Attribution { container: Some(ID.into()), pod_uid: None });
        assert_eq!(attribute(&format!("0::/docker/{ID}")).container.as_deref(), Some(ID));
        assert_eq!(attribute("0::/user.slice/user-1000.slice/session-3.scope"), Attribution::default());
        assert_eq!(attribute("0::/"), Attribution::default());
        assert_eq!(attribute("garbage"), Attribution::default());
    }
}
