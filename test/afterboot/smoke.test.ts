import { describe, expect, it } from 'vitest';
import { parseSmokeOutput, remoteCommand } from '../../src/afterboot/smoke.js';

describe('smoke output', () => {
  it('counts PASS lines and keeps FAIL lines verbatim; WARN, SKIP and other text are neither', () => {
    const out = ['# ssh root@198.18.77.100:22 host key SHA256:abc', 'PASS image is bee', 'FAIL dropbear running', 'WARN report upload: not yet', 'SKIP collector gpu: nvidia-smi not installed', 'PASSED is not a check', 'FAIL collector cpu: error: exit 1\r', 'smoketest: 2 required check(s) failed', ''].join('\n');
    expect(parseSmokeOutput(out)).toEqual({ passed: 1, failed: ['FAIL dropbear running', 'FAIL collector cpu: error: exit 1'] });
  });
});

describe('the remote command', () => {
  it("follows the script's #! line, else sh -s", () => {
    expect(remoteCommand('#!/bin/bash\nfails=0\n')).toBe('/bin/bash -s');
    expect(remoteCommand('#!/bin/sh\n')).toBe('/bin/sh -s');
    expect(remoteCommand('#!/usr/bin/env bash\n')).toBe('bash -s');
    expect(remoteCommand('echo PASS x\n')).toBe('sh -s');
    expect(remoteCommand('#!/bin/sh; rm -rf /\n')).toBe('sh -s');
  });
});
