// fetch-js: a JavaScript job that makes one outbound HTTP request with fetch() (which
// componentize-js implements on wasi:http), built against the `job-http` world.
//
// Input {"url": "http://..."} -> output {"status": 200, "body": "..."}. A request the runner
// denies (the destination is not granted to the job) rejects fetch(); the job then fails the
// run with the error in its message (no retry: a grant does not appear by retrying).
import { log } from 'sandfire:job/host@0.1.1';

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export async function run(ctx, input) {
  let url;
  try {
    url = JSON.parse(decoder.decode(input)).url;
  } catch (e) {
    url = undefined;
  }
  if (typeof url !== 'string') {
    throw { payload: { tag: 'fail', val: 'input must be {"url": "http://..."}' } };
  }
  let response;
  let body;
  try {
    response = await fetch(url);
    body = await response.text();
  } catch (e) {
    throw { payload: { tag: 'fail', val: `fetch ${url} failed: ${e}` } };
  }
  log('info', `fetched ${url}`, [{ key: 'status', value: String(response.status) }]);
  return encoder.encode(JSON.stringify({ status: response.status, body }));
}
