//! One result row, the same for both backends.

use std::sync::Arc;

#[derive(Debug, Clone)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    /// No column the store reads is REAL today; kept so that one would read as what it is.
    #[allow(dead_code)]
    Real(f64),
    Text(String),
}

#[derive(Debug)]
pub(crate) struct Row {
    /// The query's column names, shared by its rows.
    names: Arc<[String]>,
    cells: Vec<Cell>,
}

impl Row {
    pub(crate) fn new(names: Arc<[String]>, cells: Vec<Cell>) -> Row {
        Row { names, cells }
    }

    fn cell(&self, name: &str) -> Result<&Cell, sqlx::Error> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.cells.get(i))
            .ok_or_else(|| sqlx::Error::ColumnNotFound(name.to_string()))
    }

    fn mismatch(name: &str, want: &str) -> sqlx::Error {
        sqlx::Error::ColumnDecode {
            index: name.to_string(),
            source: format!("expected {want}").into(),
        }
    }

    pub(crate) fn text(&self, name: &str) -> Result<String, sqlx::Error> {
        self.opt_text(name)?
            .ok_or_else(|| Self::mismatch(name, "text, found NULL"))
    }

    pub(crate) fn opt_text(&self, name: &str) -> Result<Option<String>, sqlx::Error> {
        match self.cell(name)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s.clone())),
            _ => Err(Self::mismatch(name, "text")),
        }
    }

    pub(crate) fn int(&self, name: &str) -> Result<i64, sqlx::Error> {
        match self.cell(name)? {
            Cell::Int(n) => Ok(*n),
            _ => Err(Self::mismatch(name, "an integer")),
        }
    }
}
