/**
 * Side-effect module: must be imported before anything that loads undici.
 *
 * undici compiles its HTTP parser (llhttp, WebAssembly) when it is loaded, and V8 then
 * optimises the module with TurboFan on background threads. Process exit waits for that
 * work: ~60 ms added to every short kiln command that talks to a registry (measured:
 * the re-push of an unchanged image). The baseline (Liftoff) code is plenty for parsing
 * HTTP headers and framing bodies, so optimised tiers are turned off for wasm. The flag
 * is read when a module is compiled, so it only has to be set before undici loads;
 * kiln has no other WebAssembly. KILN_WASM_TIERUP=1 keeps V8's default.
 */
import { setFlagsFromString } from 'node:v8';

if (process.env.KILN_WASM_TIERUP !== '1') setFlagsFromString('--liftoff-only');
