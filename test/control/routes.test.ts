import { describe, expect, it } from 'vitest';
import { routeTable } from '../../src/control/routes.js';

describe('routeTable', () => {
  const match = routeTable({ 'GET /api/hosts/:name': 'host', 'POST /api/hosts/:name/smoke': 'smoke', 'GET /stats': 'stats' });

  it('matches method and path, with decoded parameters', () => {
    expect(match('GET', '/api/hosts/a%20b')).toEqual({ fn: 'host', params: ['a b'] });
    expect(match('POST', '/api/hosts/h1/smoke')).toEqual({ fn: 'smoke', params: ['h1'] });
    expect(match('GET', '/stats')).toEqual({ fn: 'stats', params: [] });
  });

  it('answers null for another method, another path, a parameter with a slash, or a malformed escape', () => {
    expect(match('POST', '/api/hosts/h1')).toBeNull();
    expect(match('GET', '/api/hosts/h1/x')).toBeNull();
    expect(match('GET', '/statsx')).toBeNull();
    expect(match('GET', '/api/hosts/%E0%A4%A')).toBeNull();
  });
});
