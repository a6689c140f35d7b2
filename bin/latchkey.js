#!/usr/bin/env node
// Entry point for the `latchkey` command. Runs the TypeScript sources through tsx's loader so a
// fresh clone needs no build step.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
