//! Wire formats (in progress)
