use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Object, Stream};

use super::*;

/// A PDF whose pages show these operations (Helvetica, WinAnsiEncoding, 12 pt as `F1`).
fn pdf(pages: &[Vec<Operation>]) -> Vec<u8> {
    let mut doc = lopdf::Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut kids = Vec::new();
    for operations in pages {
        let content = Content {
            operations: operations.clone(),
        };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(page_id.into());
    }
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => pages.len() as i64,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}

/// A text object showing `lines`, one per line.
fn lines(lines: &[Object]) -> Vec<Operation> {
    let mut ops = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 12.into()]),
        Operation::new("Td", vec![72.into(), 770.into()]),
    ];
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            ops.push(Operation::new("T*", vec![]));
        }
        let op = if matches!(line, Object::Array(_)) {
            "TJ"
        } else {
            "Tj"
        };
        ops.push(Operation::new(op, vec![line.clone()]));
    }
    ops.push(Operation::new("ET", vec![]));
    ops
}

fn s(text: &str) -> Object {
    Object::string_literal(text)
}

#[test]
fn text_per_page_with_page_numbers() {
    let bytes = pdf(&[
        lines(&[
            s("Quiver keeps points on disk."),
            // Words placed apart by a kerning gap, with no space character between them.
            Object::Array(vec![s("Vector"), Object::Integer(-300), s("search")]),
        ]),
        lines(&[s("The second page.")]),
        vec![],
        lines(&[s("Page four, after a blank page.")]),
    ]);
    let doc = extract(Path::new("two.pdf"), &bytes).unwrap();
    assert_eq!(
        doc.text,
        "Quiver keeps points on disk.\nVector search\n\nThe second page.\n\n\n\nPage four, after a blank page."
    );
    let numbers: Vec<u32> = doc.pages.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    let at = |needle: &str| crate::documents::page_at(&doc.pages, doc.text.find(needle).unwrap());
    assert_eq!(at("Vector"), Some(1));
    assert_eq!(at("second"), Some(2));
    assert_eq!(at("Page four"), Some(4));
}

#[test]
fn typeset_lines_and_word_gaps_are_kept_apart() {
    // A paragraph as TeX writes it: one text object, a `Td` down to each next line, words placed
    // by `TJ` offsets (no space characters), kerning inside a word; then a `Tm` further along the
    // same line, and one to a lower line.
    let tj = |items: Vec<Object>| Operation::new("TJ", vec![Object::Array(items)]);
    let tm = |x: i64, y: i64| {
        Operation::new(
            "Tm",
            vec![1.into(), 0.into(), 0.into(), 1.into(), x.into(), y.into()],
        )
    };
    let ops = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 10.into()]),
        Operation::new("Td", vec![72.into(), 700.into()]),
        tj(vec![
            s("The"),
            Object::Integer(-333),
            s("quick"),
            Object::Integer(-280),
            s("bro"),
            Object::Integer(20),
            s("wn"),
        ]),
        Operation::new("Td", vec![0.into(), (-12).into()]),
        tj(vec![s("fox"), Object::Integer(-333), s("jumps.")]),
        tm(300, 688),
        Operation::new("Tj", vec![s("over")]),
        tm(72, 600),
        Operation::new("Tj", vec![s("the dog")]),
        Operation::new("ET", vec![]),
    ];
    let doc = extract(Path::new("tex.pdf"), &pdf(&[ops])).unwrap();
    assert_eq!(doc.text, "The quick brown\nfox jumps. over\nthe dog");
}

#[test]
fn a_libreoffice_pdf_with_embedded_fonts() {
    // tests/fixtures/documents/sample.pdf: sample.html beside it, converted by LibreOffice 7.4
    // (`soffice --headless --convert-to pdf sample.html`): subset TrueType fonts with ToUnicode
    // maps, as most office PDFs are.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/documents/sample.pdf");
    let doc = extract(&path, &std::fs::read(&path).unwrap()).unwrap();
    for want in [
        "Vector search in one binary",
        "nearest ones with",
        "A naïve café owner asked",
        "efficient office workflow",
        "Yes — it does.",
        "Each chunk is found on its own.",
    ] {
        assert!(doc.text.contains(want), "{want:?} not in {:?}", doc.text);
    }
    assert_eq!(doc.pages.len(), 2);
    assert_eq!(
        crate::documents::page_at(&doc.pages, doc.text.find("naïve").unwrap()),
        Some(1)
    );
    assert_eq!(
        crate::documents::page_at(&doc.pages, doc.text.find("The second page").unwrap()),
        Some(2)
    );
}

#[test]
fn unreadable_pdfs_name_the_file() {
    let err = extract(Path::new("docs/fake.pdf"), b"%PDF-1.4 this is not a pdf").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("docs/fake.pdf: not a readable PDF"),
        "{msg}"
    );

    let blank = pdf(&[vec![], vec![]]);
    let msg = extract(Path::new("scan.pdf"), &blank)
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("scan.pdf: no text") && msg.contains("OCR"),
        "{msg}"
    );
}

#[test]
fn tidy_trims_lines_and_blank_runs() {
    assert_eq!(tidy("\n a  \n\n\n\nb\t\n\n"), " a\n\nb");
    assert_eq!(tidy(""), "");
}
