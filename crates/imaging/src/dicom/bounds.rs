//! Element lengths checked against the bytes that follow, before dicom-object parses the
//! stream: its parser reserves and zero-fills an element's declared length before reading it,
//! so one corrupt length field (0xFFxxxxxx) in a 300-byte file costs gigabytes and seconds.
//! dicom-object has no option to bound this, so the stream's element headers are walked here
//! first with dicom-encoding's header decoders; what the walk read is handed on, so the
//! stream is read once.

use std::io::{Cursor, Read};

use dicom_core::Tag;
use dicom_core::header::{HasLength, Header};
use dicom_dictionary_std::{tags, uids};
use dicom_transfer_syntax_registry::{TransferSyntax, TransferSyntaxIndex, TransferSyntaxRegistry};

/// An element whose declared length runs past the end of the stream.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Overrun {
    tag: Tag,
    claimed: u32,
    remaining: usize,
}

impl std::fmt::Display for Overrun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DICOM element ({:04X},{:04X}) claims {} bytes but only {} remain; the file is truncated or corrupt",
            self.tag.0, self.tag.1, self.claimed, self.remaining
        )
    }
}

/// What an open container is, for the items it holds: a sequence's items hold elements, the
/// items of encapsulated pixel data hold fragment bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sequence,
    Item,
    Fragments,
}

/// Reads `stream` (from `DICM` on: the magic, the file meta group, the data set) and returns
/// the bytes read, refusing the first element that claims more bytes than remain. With
/// `until_pixel_data` it stops after the top-level Pixel Data header, as dicom-object's
/// `read_until` does. A stream this walk cannot follow (a header it cannot decode, a
/// deflated data set) is handed on as read so far: dicom-object then reports it.
pub(super) fn check(stream: &mut impl Read, until_pixel_data: bool) -> Result<Vec<u8>, Overrun> {
    let mut seen = Vec::new();
    // Makes `seen` hold `end` bytes if the stream has them; false at its end.
    let mut fill = |seen: &mut Vec<u8>, end: usize| {
        if seen.len() < end {
            let wanted = (end - seen.len()) as u64;
            // `take` bounds the read, and read_to_end grows `seen` only as bytes arrive.
            let _ = stream.take(wanted).read_to_end(seen);
        }
        seen.len() >= end
    };
    let registry = TransferSyntaxRegistry;
    // The file meta group is explicit VR little endian; the data set is in the transfer
    // syntax the meta group names.
    let mut decoder = registry
        .get(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .and_then(|ts| ts.decoder())
        .expect("explicit VR little endian is built in");
    let mut in_meta = true;
    let mut named = None;
    let mut pos = 4; // after DICM
    // Open containers with their end (None: undefined length, closed by a delimiter).
    let mut open: Vec<(Kind, Option<usize>)> = Vec::new();
    loop {
        while open
            .last()
            .is_some_and(|&(_, end)| end.is_some_and(|e| pos >= e))
        {
            open.pop();
        }
        // The longest header is 12 bytes (explicit VR with a 4-byte length).
        fill(&mut seen, pos + 12);
        // Copied out because the decoder is typed for one reader lifetime and `seen` grows.
        let mut head = [0; 12];
        let available = &seen[pos.min(seen.len())..];
        let n = available.len().min(12);
        head[..n].copy_from_slice(&available[..n]);
        let mut head = Cursor::new(head).take(n as u64);
        let Ok((header, read)) = decoder.decode_header(&mut head) else {
            return Ok(seen);
        };
        let tag = header.tag();
        if in_meta && tag.group() != 0x0002 {
            in_meta = false;
            // This header is the data set's first: decoded again in its transfer syntax.
            match named.take().and_then(|ts: &TransferSyntax| ts.decoder()) {
                Some(next) => decoder = next,
                None => return Ok(seen),
            }
            continue;
        }
        pos += read;
        if until_pixel_data && open.is_empty() && tag == tags::PIXEL_DATA {
            return Ok(seen);
        }
        let length = header.length().get();
        let kind = open.last().map(|&(kind, _)| kind);
        if header.is_item_delimiter() || header.is_sequence_delimiter() {
            if open.last().is_some_and(|&(_, end)| end.is_none()) {
                open.pop();
            }
            continue;
        }
        let container = if header.is_item() {
            (kind != Some(Kind::Fragments)).then_some(Kind::Item)
        } else if tag == tags::PIXEL_DATA && length.is_none() {
            Some(Kind::Fragments)
        } else if length.is_none() || header.vr() == dicom_core::VR::SQ {
            Some(Kind::Sequence)
        } else {
            None
        };
        let Some(length) = length else {
            open.push((container.unwrap_or(Kind::Sequence), None));
            continue;
        };
        let end = pos + length as usize;
        if !fill(&mut seen, end) {
            return Err(Overrun {
                tag,
                claimed: length,
                remaining: seen.len() - pos.min(seen.len()),
            });
        }
        match container {
            Some(kind) => open.push((kind, Some(end))),
            None => {
                if tag == tags::TRANSFER_SYNTAX_UID {
                    let uid = String::from_utf8_lossy(&seen[pos..end]);
                    let uid = uid.trim_end_matches(['\0', ' ']);
                    // A deflated data set's lengths bound the inflated stream, not this one.
                    named = registry
                        .get(uid)
                        .filter(|ts| ts.is_codec_free() || ts.is_encapsulated_pixel_data());
                }
                pos = end;
            }
        }
    }
}
