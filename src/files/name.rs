//! Provisional file-name cleaning (replaced by the full version).
pub fn clean(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let kept: String = last.chars().filter(|c| !c.is_control()).collect();
    if kept.is_empty() || kept == "." || kept == ".." {
        "file".into()
    } else {
        kept
    }
}
