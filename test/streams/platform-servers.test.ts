import { describe, expect, it } from 'vitest';
import { platformServerNamed } from '../../src/streams/platform-servers.js';

const dns: Record<string, string[]> = {
  'kafka.weir-streams.svc': ['198.18.0.10'],
  'alias.example.com': ['198.18.0.10'],
  'localhost': ['127.0.0.1', '::1'],
  'elsewhere.example.com': ['198.18.7.7'],
};
const resolve = async (host: string) => {
  const found = dns[host];
  if (!found) throw new Error(`ENOTFOUND ${host}`);
  return found;
};

describe('platformServerNamed', () => {
  it('finds the platform broker by name, by an address both names share, case aside', async () => {
    const platform = ['kafka.weir-streams.svc:9092'];
    expect(await platformServerNamed('KAFKA.weir-streams.svc:9092', platform, resolve)).toBe('KAFKA.weir-streams.svc:9092');
    expect(await platformServerNamed('other:1, alias.example.com:9092', platform, resolve)).toBe('alias.example.com:9092');
    expect(await platformServerNamed('198.18.0.10:9092', platform, resolve)).toBe('198.18.0.10:9092');
    expect(await platformServerNamed('[::ffff:198.18.0.10]:9092', platform, resolve)).toBe('[::ffff:198.18.0.10]:9092');
  });

  it('lets other brokers through: another port, another address, a name that does not resolve', async () => {
    const platform = ['kafka.weir-streams.svc:9092'];
    expect(await platformServerNamed('kafka.weir-streams.svc:9093', platform, resolve)).toBeUndefined();
    expect(await platformServerNamed('elsewhere.example.com:9092', platform, resolve)).toBeUndefined();
    expect(await platformServerNamed('nowhere.example.com:9092', platform, resolve)).toBeUndefined();
    expect(await platformServerNamed('kafka:9092', [], resolve)).toBeUndefined();
  });

  it('takes any name of this machine for a broker on loopback', async () => {
    const platform = ['127.0.0.1:41234', '127.0.0.1:41235'];
    for (const server of ['localhost:41234', '127.0.0.9:41234', '[::1]:41235', '0.0.0.0:41234', '[::]:41235']) {
      expect(await platformServerNamed(`elsewhere.example.com:9092,${server}`, platform, resolve), server).toBe(server);
    }
    expect(await platformServerNamed('localhost:9092', platform, resolve)).toBeUndefined();
  });
});
