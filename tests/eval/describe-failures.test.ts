// The sorting of wrong "Describe the image." answers (scripts/describe-failures.ts) on grader problem lines of the
// form src/shapes writes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyDescribeFailure } from '../../scripts/describe-failures.ts';

const want = 'white: small red circle @ center; large green triangle @ bottom left; large orange triangle @ bottom right';

describe('classifyDescribeFailure', () => {
  it('finds a wrong object that repeats another object of the scene', () => {
    const got = 'white: small red circle @ center; small red circle @ bottom left; large orange triangle @ bottom right';
    assert.deepEqual(classifyDescribeFailure(`describe: got ${got}, want ${want}`), { kind: 'cells right, 1 object(s) wrong', repeats: true });
  });

  it('tells a wrong object that repeats nothing, wrong cells, a wrong count and a wrong background apart', () => {
    const recoloured = 'white: small red circle @ center; large blue triangle @ bottom left; large orange triangle @ bottom right';
    assert.deepEqual(classifyDescribeFailure(`describe: got ${recoloured}, want ${want}`), { kind: 'cells right, 1 object(s) wrong', repeats: false });
    const moved = 'white: small red circle @ top; large green triangle @ bottom left; large orange triangle @ bottom right';
    assert.equal(classifyDescribeFailure(`describe: got ${moved}, want ${want}`).kind, 'objects in wrong cells');
    const fewer = 'white: small red circle @ center; large green triangle @ bottom left';
    assert.equal(classifyDescribeFailure(`describe: got ${fewer}, want ${want}`).kind, 'wrong number of objects');
    assert.equal(classifyDescribeFailure(`describe: got ${want.replace('white', 'gray')}, want ${want}`).kind, 'background only');
  });

  it('calls an answer the grader could not read as a scene not a scene', () => {
    assert.equal(classifyDescribeFailure('no answer').kind, 'not a scene (e.g. two objects in one cell)');
    assert.equal(classifyDescribeFailure(`describe: got a red circle, want ${want}`).kind, 'not a scene (e.g. two objects in one cell)');
  });
});
