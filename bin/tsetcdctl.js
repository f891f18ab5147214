#!/usr/bin/env node
// tsetcdctl by its earlier name; bin/tsetcdctl.cjs is the program (package.json's bin), started
// here for scripts that name this file.
import { createRequire } from 'node:module';

createRequire(import.meta.url)('./tsetcdctl.cjs');
