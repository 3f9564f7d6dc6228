//! Not yet implemented: see the README's status table.
