#!/usr/bin/env bash
# `sam build`, with the functions built as Cargo.toml's [profile.aws-lambda] says (fat LTO, one
# codegen unit, stripped, optimised for size, panics abort). SAM has cargo-lambda build at the
# release profile; these variables make it the aws-lambda profile for this build only (a test
# holds them to Cargo.toml). Arguments go to sam build. cargo-lambda builds with the default
# features, so the `local` feature's code is compiled too; no function reaches it (they build
# their app with `App::on_aws`), so the fat LTO link leaves it out of every binary.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_PROFILE_RELEASE_LTO=true
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
export CARGO_PROFILE_RELEASE_STRIP=true
export CARGO_PROFILE_RELEASE_OPT_LEVEL=s
export CARGO_PROFILE_RELEASE_PANIC=abort
exec sam build "$@"
