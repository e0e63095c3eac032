//! docs/dcgm-compat.md lists every dcgm-exporter alias of the metric catalogue, with its name in
//! each profile and the gpuscope series it comes from.

use gpuscope_core::{CATALOGUE, DcgmProfile, Scope};

#[test]
fn the_field_table_lists_every_alias_in_every_profile() {
    let doc = include_str!("../docs/dcgm-compat.md");
    let mut rows = 0;
    for m in CATALOGUE {
        let Some(a) = m.dcgm else { continue };
        // A MIG row's series join its GPU row's family: one table row names both sources.
        rows += usize::from(m.scope() != Scope::Mig);
        let line = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", a.name)))
            .unwrap_or_else(|| panic!("docs/dcgm-compat.md has no row for {}", a.name));
        let source = line.trim_end_matches('|').rsplit('|').next().unwrap_or_default();
        assert!(source.contains(&format!("`{}`", m.prometheus)), "{line}");
        let v49 = a.name_in(DcgmProfile::V4_9);
        assert!(
            if v49 == a.name { line.contains("(unchanged)") } else { line.contains(&format!("`{v49}`")) },
            "{line}"
        );
        let v410 = a.name_in(DcgmProfile::V4_10);
        assert!(if v410 == v49 { line.contains("(as 4.9)") } else { line.contains(&format!("`{v410}`")) }, "{line}");
    }
    assert_eq!(doc.lines().filter(|l| l.starts_with("| `DCGM_FI_")).count(), rows);
}
