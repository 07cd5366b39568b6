//! The few S3 XML documents this client reads and writes, as pure functions over text.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::storage::{ObjectMeta, StorageError};

/// What [`walk`] meets: text inside an element, or the end of an element.
enum Node<'a> {
    Text(&'a str),
    End,
}

/// Calls `visit(path, node)` for every text node and element end, `path` being the element
/// names from the root down (still including the element that ends).
fn walk(xml: &str, mut visit: impl FnMut(&[String], Node<'_>)) -> Result<(), StorageError> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    loop {
        match reader.read_event().map_err(malformed)? {
            Event::Start(e) => path.push(String::from_utf8_lossy(e.local_name().as_ref()).into()),
            Event::End(_) => {
                visit(&path, Node::End);
                path.pop();
            }
            Event::Text(t) => visit(&path, Node::Text(&t.unescape().map_err(malformed)?)),
            Event::CData(t) => visit(&path, Node::Text(&String::from_utf8_lossy(&t))),
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

fn malformed(e: impl std::fmt::Display) -> StorageError {
    StorageError::Protocol(format!("malformed XML: {e}"))
}

fn ends_with(path: &[String], tail: &[&str]) -> bool {
    path.len() >= tail.len() && path[path.len() - tail.len()..].iter().eq(tail.iter())
}

/// An S3 `<Error>` document: its code and message (`None` if it is not one).
pub fn parse_error(xml: &str) -> Option<(String, String)> {
    let (mut code, mut message) = (None, String::new());
    walk(xml, |path, node| match (path, node) {
        ([root, field], Node::Text(text)) if root == "Error" && field == "Code" => {
            code = Some(text.to_owned())
        }
        ([root, field], Node::Text(text)) if root == "Error" && field == "Message" => {
            message = text.to_owned()
        }
        _ => {}
    })
    .ok()?;
    Some((code?, message))
}

/// The `UploadId` of an `InitiateMultipartUploadResult`.
pub fn parse_upload_id(xml: &str) -> Result<String, StorageError> {
    let mut id = None;
    walk(xml, |path, node| {
        if let Node::Text(text) = node
            && ends_with(path, &["InitiateMultipartUploadResult", "UploadId"])
        {
            id = Some(text.to_owned());
        }
    })?;
    id.ok_or_else(|| StorageError::Protocol("no UploadId in the answer".into()))
}

/// One page of `ListObjectsV2`: the objects, and the token of the next page if any.
pub struct ListPage {
    pub objects: Vec<ObjectMeta>,
    pub next_token: Option<String>,
}

pub fn parse_list(xml: &str) -> Result<ListPage, StorageError> {
    let mut page = ListPage {
        objects: Vec::new(),
        next_token: None,
    };
    let mut truncated = false;
    let mut current = empty_meta();
    walk(xml, |path, node| match (path, node) {
        ([_, f], Node::Text(text)) if f == "IsTruncated" => truncated = text == "true",
        ([_, f], Node::Text(text)) if f == "NextContinuationToken" => {
            page.next_token = Some(text.to_owned())
        }
        ([_, c, f], Node::Text(text)) if c == "Contents" => fill_meta(&mut current, f, text),
        ([_, c], Node::End) if c == "Contents" => page
            .objects
            .push(std::mem::replace(&mut current, empty_meta())),
        _ => {}
    })?;
    if !truncated {
        page.next_token = None;
    }
    Ok(page)
}

fn empty_meta() -> ObjectMeta {
    ObjectMeta {
        key: String::new(),
        size: 0,
        content_type: None,
        last_modified: None,
    }
}

fn fill_meta(meta: &mut ObjectMeta, field: &str, text: &str) {
    match field {
        "Key" => meta.key.push_str(text),
        "Size" => meta.size = text.trim().parse().unwrap_or_default(),
        "LastModified" => meta.last_modified = parse_iso_time(text),
        _ => {}
    }
}

fn parse_iso_time(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()
}

/// Keys and upload ids of `ListMultipartUploads`: uploads started and neither completed nor
/// aborted.
pub fn parse_uploads(xml: &str) -> Result<Vec<(String, String)>, StorageError> {
    let mut uploads = Vec::new();
    let (mut key, mut id) = (String::new(), String::new());
    walk(xml, |path, node| match (path, node) {
        ([_, u, f], Node::Text(text)) if u == "Upload" && f == "Key" => key.push_str(text),
        ([_, u, f], Node::Text(text)) if u == "Upload" && f == "UploadId" => id.push_str(text),
        ([_, u], Node::End) if u == "Upload" => {
            uploads.push((std::mem::take(&mut key), std::mem::take(&mut id)))
        }
        _ => {}
    })?;
    Ok(uploads)
}

/// The body of `CompleteMultipartUpload`: part numbers with the ETags exactly as S3 gave
/// them (quotes included).
pub fn complete_body(etags: &[String]) -> String {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (i, etag) in etags.iter().enumerate() {
        let etag = quick_xml::escape::escape(etag.as_str());
        xml.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>",
            i + 1
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_give_code_and_message() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The key &amp; more</Message><Key>a</Key></Error>"#;
        assert_eq!(
            parse_error(xml),
            Some(("NoSuchKey".into(), "The key & more".into()))
        );
        assert_eq!(parse_error("<html>proxy error</html>"), None);
        assert_eq!(parse_error("not xml at all <"), None);
    }

    #[test]
    fn listings_give_keys_sizes_and_the_next_page() {
        let xml = r#"<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Name>b</Name><IsTruncated>true</IsTruncated>
<Contents><Key>a &amp; b.txt</Key><Size>3</Size>
<LastModified>2026-01-02T03:04:05.000Z</LastModified></Contents>
<Contents><Key>r&#233;sum&#233;</Key><Size>10</Size></Contents>
<NextContinuationToken>tok</NextContinuationToken></ListBucketResult>"#;
        let page = parse_list(xml).expect("parses");
        assert_eq!(page.objects.len(), 2);
        assert_eq!(page.objects[0].key, "a & b.txt");
        assert_eq!(page.objects[0].size, 3);
        assert!(page.objects[0].last_modified.is_some());
        assert_eq!(page.objects[1].key, "résumé");
        assert_eq!(page.next_token.as_deref(), Some("tok"));
    }

    #[test]
    fn complete_body_keeps_etags_as_received() {
        let body = complete_body(&["\"abc\"".into(), "def".into()]);
        assert!(body.contains("<PartNumber>1</PartNumber><ETag>&quot;abc&quot;</ETag>"));
        assert!(body.contains("<PartNumber>2</PartNumber><ETag>def</ETag>"));
    }
}
