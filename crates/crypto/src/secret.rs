//! Secret-holding types: zeroized on drop, redacted in `Debug`.
