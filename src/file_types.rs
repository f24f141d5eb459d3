//! What an uploaded file is, read from its bytes and never from its name: a
//! program renamed `invoice.docx` is still a program, and is refused.

use std::io::{Cursor, Read};

use zip::read::{ArchiveOffset, Config};
use zip::ZipArchive;

pub const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
pub const ODT: &str = "application/vnd.oasis.opendocument.text";
pub const ODS: &str = "application/vnd.oasis.opendocument.spreadsheet";
pub const CSV: &str = "text/csv";
pub const TEXT: &str = "text/plain";

/// Types recognised by their signature alone.
const BY_SIGNATURE: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"];

/// How much of an office document's manifest is read: real ones are a few KiB,
/// and a compressed bomb must not be inflated past this.
const MANIFEST_LIMIT: u64 = 64 * 1024;

/// Most end-of-archive record signatures an office document may hold.
const MOST_ARCHIVE_ENDS: usize = 8;

/// The type of an allowed file, or `None` for anything else.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"PK\x03\x04") {
        return office_document(bytes);
    }
    match infer::get(bytes) {
        Some(kind) => BY_SIGNATURE.iter().copied().find(|allowed| *allowed == kind.mime_type()),
        None => text(bytes),
    }
}

/// Whether a browser may show the file in the page rather than saving it.
pub fn shown_inline(content_type: &str) -> bool {
    content_type.starts_with("image/") || content_type == "application/pdf" || content_type.starts_with("text/")
}

/// DOCX and XLSX name their main part in `[Content_Types].xml`; ODF stores
/// its type in a `mimetype` entry. Macro-enabled variants (`.docm`, `.xlsm`)
/// name other parts and are refused, as is any other ZIP archive.
fn office_document(bytes: &[u8]) -> Option<&'static str> {
    // The reader tries each end-of-archive record it finds, from the last,
    // and for each may search the file or read the whole directory again:
    // a crafted file of a few MB holding thousands would take minutes. A
    // real document has one (a stray copy of its signature in compressed
    // data is rare). And the archive starts at the first byte (its signature
    // is there): told so, the reader does not search for one further in.
    let archive_ends = bytes.windows(4).filter(|window| *window == b"PK\x05\x06").take(MOST_ARCHIVE_ENDS + 1);
    if archive_ends.count() > MOST_ARCHIVE_ENDS {
        return None;
    }
    let config = Config { archive_offset: ArchiveOffset::Known(0) };
    let mut archive = ZipArchive::with_config(config, Cursor::new(bytes)).ok()?;
    if let Some(mimetype) = entry_text(&mut archive, "mimetype") {
        return match mimetype.trim() {
            ODT => Some(ODT),
            ODS => Some(ODS),
            _ => None,
        };
    }
    let manifest = entry_text(&mut archive, "[Content_Types].xml")?;
    let names_part = |part: &str, content_type: &str| {
        archive.index_for_name(part).is_some() && manifest.contains(&format!("ContentType=\"{content_type}\""))
    };
    if names_part(
        "word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    ) {
        Some(DOCX)
    } else if names_part(
        "xl/workbook.xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    ) {
        Some(XLSX)
    } else {
        None
    }
}

fn entry_text(archive: &mut ZipArchive<Cursor<&[u8]>>, name: &str) -> Option<String> {
    let entry = archive.by_name(name).ok()?;
    let mut text = String::new();
    entry.take(MANIFEST_LIMIT).read_to_string(&mut text).ok()?;
    Some(text)
}

/// UTF-8 without NULs is text; text whose every record has the same number
/// of fields, at least two, is CSV.
fn text(bytes: &[u8]) -> Option<&'static str> {
    if bytes.is_empty() || bytes.contains(&0) || std::str::from_utf8(bytes).is_err() {
        return None;
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(bytes);
    let mut widths = reader.records().map(|record| record.map(|fields| fields.len()));
    match widths.next() {
        Some(Ok(first)) if first >= 2 && widths.all(|width| matches!(width, Ok(w) if w == first)) => Some(CSV),
        _ => Some(TEXT),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::*;

    fn archive(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, body) in entries {
            writer.start_file(*name, SimpleFileOptions::default()).unwrap();
            writer.write_all(body.as_bytes()).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn ooxml(part: &str, main: &str) -> Vec<u8> {
        let manifest =
            format!("<?xml version=\"1.0\"?><Types><Override PartName=\"/{part}\" ContentType=\"{main}\"/></Types>");
        archive(&[("[Content_Types].xml", &manifest), (part, "<x/>")])
    }

    #[test]
    fn the_type_comes_from_the_content_not_the_name() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff("plain words".as_bytes()), Some(TEXT));
        assert_eq!(sniff(b"MZ\x90\0\x03\0\0\0"), None, "a Windows program is refused");
    }

    #[test]
    fn office_documents_are_known_by_their_main_part() {
        let word = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml";
        let sheet = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml";
        let macros = "application/vnd.ms-word.document.macroEnabled.main+xml";
        assert_eq!(sniff(&ooxml("word/document.xml", word)), Some(DOCX));
        assert_eq!(sniff(&ooxml("xl/workbook.xml", sheet)), Some(XLSX));
        assert_eq!(sniff(&ooxml("word/document.xml", macros)), None, "a macro-enabled document is refused");
        assert_eq!(sniff(&archive(&[("mimetype", ODT), ("content.xml", "<x/>")])), Some(ODT));
        assert_eq!(sniff(&archive(&[("mimetype", ODS)])), Some(ODS));
        assert_eq!(sniff(&archive(&[("run.exe", "MZ")])), None, "any other archive is refused");
        assert_eq!(sniff(b"PK\x03\x04 not really a zip"), None);
    }

    #[test]
    fn text_with_a_steady_number_of_fields_is_csv() {
        assert_eq!(sniff(b"name,qty\npizza,2\n\"a, b\",3\n"), Some(CSV));
        assert_eq!(sniff(b"one line of words"), Some(TEXT));
        assert_eq!(sniff(b"a,b\nc\n"), Some(TEXT));
    }
}
