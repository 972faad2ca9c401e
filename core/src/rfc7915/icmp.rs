//! RFC 7915 §4.2/§5.2 tables.
