//! What a manifest document is: its media type from the document, checked against what the server or descriptor
//! claimed.

use serde::Deserialize;

use super::spec::{is_index, is_manifest, parse_json, OCI_INDEX, OCI_MANIFEST};
use crate::error::{format_err, Result};

/// The media type a manifest document declares, checked against what the descriptor or server said.
pub fn manifest_media_type(bytes: &[u8], claimed: Option<&str>, what: &str) -> Result<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    let p: Probe = parse_json(bytes, what)?;
    if p.schema_version != Some(2) {
        return Err(format_err(
            what,
            "not a schema 2 manifest (schema 1 manifests are not supported)",
        ));
    }
    let declared = p.media_type.clone();
    let mt = match (declared.as_deref(), claimed) {
        // A generic Content-Type (application/json, text/plain from a static mirror) says nothing; a different
        // manifest type does.
        (Some(d), Some(c)) if d != c && (is_manifest(c) || is_index(c)) => {
            return Err(format_err(
                what,
                format!("the document says mediaType {d} but it was served/described as {c}"),
            ))
        }
        (Some(d), _) => d.to_string(),
        (None, Some(c)) if is_manifest(c) || is_index(c) => c.to_string(),
        (None, _) if p.manifests.is_some() => OCI_INDEX.to_string(),
        (None, _) if p.config.is_some() => OCI_MANIFEST.to_string(),
        (None, _) => return Err(format_err(what, "neither a manifest nor an index")),
    };
    if !is_manifest(&mt) && !is_index(&mt) {
        return Err(format_err(
            what,
            format!("unsupported manifest media type {mt}"),
        ));
    }
    Ok(mt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::oci::spec::{
        DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST,
    };

    fn docker_manifest() -> Vec<u8> {
        let d = Digest::of(b"x");
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "digest": d, "size": 1},
            "layers": [{"mediaType": DOCKER_LAYER_GZIP, "digest": d, "size": 1}],
        }))
        .unwrap()
    }

    #[test]
    fn manifest_media_types() {
        let m = docker_manifest();
        for (claimed, ok) in [
            (None, true),
            (Some(DOCKER_MANIFEST), true),
            (Some("application/json"), true),
            (Some("text/plain"), true),
            (Some(OCI_MANIFEST), false),
            (Some(DOCKER_MANIFEST_LIST), false),
        ] {
            assert_eq!(
                manifest_media_type(&m, claimed, "m").is_ok(),
                ok,
                "served as {claimed:?}"
            );
        }
        // no mediaType field: the served type, else the shape decides
        let bare = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(manifest_media_type(bare, None, "m").unwrap(), OCI_INDEX);
        assert_eq!(
            manifest_media_type(bare, Some(DOCKER_MANIFEST_LIST), "m").unwrap(),
            DOCKER_MANIFEST_LIST
        );
        // schema 1 is refused with a clear message
        let err =
            manifest_media_type(br#"{"schemaVersion":1,"fsLayers":[]}"#, None, "m").unwrap_err();
        assert!(err.to_string().contains("schema 1"), "{err}");
    }
}
