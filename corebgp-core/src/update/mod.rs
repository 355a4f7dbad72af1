//! UPDATE messages: zero-copy decoding (RFC 4271, 4760, 7606, 7911) and the
//! builder. (Being written.)
