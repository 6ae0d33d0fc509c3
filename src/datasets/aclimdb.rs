//! The raw Large Movie Review Dataset (`aclImdb_v1.tar.gz`, unpacked):
//! `aclImdb/{train,test}/{neg,pos}/*.txt`, one review per file.
//!
//! Labels follow `keras.utils.text_dataset_from_directory`'s alphabetical
//! class order: `neg` = 0, `pos` = 1. Within a split the reviews are `neg`
//! then `pos`, each in file-name order (no shuffling here). Other folders
//! (`train/unsup`) and files not ending in `.txt` are ignored. As in Keras's
//! examples, every `<br />` is replaced by a space.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The reviews of one split.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reviews {
    /// Review texts with `<br />` replaced by a space.
    pub texts: Vec<String>,
    /// 0 for `neg`, 1 for `pos`.
    pub labels: Vec<i64>,
    /// The file each review came from.
    pub files: Vec<PathBuf>,
}

/// Loads `root/train` and `root/test`; returns `(train, test)`.
pub fn load_aclimdb(root: impl AsRef<Path>) -> Result<(Reviews, Reviews)> {
    let root = root.as_ref();
    Ok((
        load_aclimdb_split(root, "train")?,
        load_aclimdb_split(root, "test")?,
    ))
}

/// Loads one split (`"train"` or `"test"`, or any folder of `root` holding
/// `neg/` and `pos/`). A missing or empty `neg`/`pos` folder is an error
/// naming it; so is a file that is not UTF-8 (with the byte offset).
pub fn load_aclimdb_split(root: impl AsRef<Path>, split: &str) -> Result<Reviews> {
    let dir = root.as_ref().join(split);
    let mut out = Reviews::default();
    for (label, class) in [(0i64, "neg"), (1, "pos")] {
        let class_dir = dir.join(class);
        let files = txt_files(&class_dir)?;
        if files.is_empty() {
            return Err(Error::file(
                &class_dir,
                "no .txt review files in this folder (expected aclImdb/<split>/{neg,pos}/*.txt)",
            ));
        }
        for file in files {
            out.texts.push(read_review(&file)?);
            out.labels.push(label);
            out.files.push(file);
        }
    }
    Ok(out)
}

fn txt_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(Error::file(
            dir,
            "folder not found (expected aclImdb/<split>/{neg,pos}/*.txt)",
        ));
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        if p.extension().is_some_and(|e| e == "txt") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

fn read_review(file: &Path) -> Result<String> {
    let bytes = fs::read(file).map_err(|e| Error::io(file, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::file(
            file,
            format!(
                "not valid UTF-8 at byte offset {}",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    Ok(text.replace("<br />", " "))
}
