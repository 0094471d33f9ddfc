//! Tests of the sandbox against real components.
