//! Marquee's load generators as a library, so the end-to-end tests can play a small opening
//! night against a stack of their own (`opening_night::run`), as the command line does.

pub mod opening_night;
