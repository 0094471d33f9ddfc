// hello-js: the `hello` job in JavaScript, built with componentize-js against wit/job.wit.
//
// Input {"name": "Ada"} -> output {"greeting": "Hello, Ada!"}. It logs one line with fields
// through the host, reports progress and prints a line to stdout (captured into the run's log).
import { log, progress } from 'sandfire:job/host@0.1.1';

const decoder = new TextDecoder();
const encoder = new TextEncoder();

// `run: func(ctx: context, input: list<u8>) -> result<list<u8>, job-error>`: return the ok
// value; throw `{ payload: <job-error> }` for the error one.
export function run(ctx, input) {
  let name;
  try {
    name = JSON.parse(decoder.decode(input)).name;
  } catch (e) {
    name = undefined;
  }
  if (typeof name !== 'string') {
    // Bad input will not get better on retry.
    throw { payload: { tag: 'fail', val: 'input must be {"name": "..."}' } };
  }
  log('info', `greeting ${name}`, [
    { key: 'name', value: name },
    { key: 'attempt', value: String(ctx.attempt) },
    { key: 'language', value: 'javascript' },
  ]);
  console.log(`hello-js says hello to ${name}`);
  progress(100, 'greeted');
  return encoder.encode(JSON.stringify({ greeting: `Hello, ${name}!` }));
}
