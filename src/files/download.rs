//! Downloads on their way to the client, counted in
//! `daedalus_file_bytes_total{direction="out"}` as the bytes pass.

use futures_util::{StreamExt, TryStreamExt};

use super::upload::bytes_counter;
use crate::storage::ByteStream;

/// `body`, counting each chunk as it is handed on.
pub fn counted(body: ByteStream) -> ByteStream {
    let out = bytes_counter("out");
    body.inspect_ok(move |chunk| out.inc_by(chunk.len() as u64))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn downloaded_bytes_are_counted() {
        let before = bytes_counter("out").get();
        let chunks = [
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"de")),
        ];
        let body = counted(futures_util::stream::iter(chunks).boxed());
        let read: Vec<Bytes> = body.try_collect().await.expect("reads");
        assert_eq!(read.concat(), b"abcde");
        assert!(bytes_counter("out").get() >= before + 5);
    }
}
