//! Semantic validation of parsed messages, naming the status code owed (400, 416, 420, 483, 505, ...).
