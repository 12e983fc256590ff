//! The one integration-test binary: every test builds the real app with
//! `spawn_app()` and talks HTTP to it, on both storage backends, and with
//! the catalog in SQLite or in PostgreSQL.

mod helpers;
mod postgres;
mod seaweed;

mod access;
mod access_more;
mod audio;
mod audit;
mod bodies;
mod browser;
mod catalogs;
mod cluster;
mod conditional;
mod connections;
mod demo;
mod errors;
mod faults;
mod incidents;
mod ingest;
mod isolation;
mod lifecycle;
mod limits;
mod ownership;
mod players;
mod refusals;
mod replicas;
mod resumes;
mod splices;
mod tls;
mod verdicts;
