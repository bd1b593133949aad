/**
 * The `rules:` config section and the shipped application catalogue (profiles/apps/): what loads,
 * what each catalogue classifies, and errors that name the field and the fix.
 */
import { describe, expect, it } from 'vitest';
import { APP_CATALOGUE_DIR, expandRules, listAppCatalogues, loadAppCatalogue, parseRules } from '../../src/control/config-rules.ts';
import { newInnerInfo, parseInner } from '../../src/core/inner.ts';
import { CLASS_NAMES } from '../../src/core/steer/classes.ts';
import { RuleSet } from '../../src/core/steer/rules.ts';
import { ipv4Packet } from '../core/steer/ipv4-packet.ts';
import { BraidError } from '../../src/core/errors.ts';

function classify(rs: RuleSet, p: Uint8Array): { rule: string | undefined; className: string } {
  const v = rs.classifyInner(p, parseInner(p, newInnerInfo())!);
  return { rule: v.rule < 0 ? undefined : rs.names[v.rule], className: CLASS_NAMES[v.classId]! };
}

function errorOf(fn: () => unknown): BraidError {
  try {
    fn();
  } catch (e) {
    if (e instanceof BraidError) return e;
    throw e;
  }
  throw new Error('expected a BraidError');
}

describe('application catalogue (profiles/apps)', () => {
  it('ships teams, zoom, webex and sip, each with a vendor source line and valid rules', () => {
    expect(listAppCatalogues()).toEqual(['sip', 'teams', 'webex', 'zoom']);
    for (const name of listAppCatalogues()) {
      const c = loadAppCatalogue(name);
      expect(c.source).toMatch(/^https:\/\//);
      expect(() => new RuleSet(expandRules([{ catalogue: name }], 'test'))).not.toThrow();
    }
  });

  it('an unmarked UDP packet from a LAN host to a Teams media relay port is voice (rules: [{ catalogue: teams }])', () => {
    const rs = new RuleSet(expandRules(parseRules([{ catalogue: 'teams' }], 'site.yaml'), 'site.yaml'));
    // A branch PC (10.1.0.23) sends audio from an ephemeral port to a Teams transport relay in
    // 52.112.0.0/14 on UDP 3478, DSCP 0: what a PC without QoS policies sends.
    const relay = ipv4Packet({ src: '10.1.0.23', dst: '52.113.20.7', protocol: 17, sport: 61234, dport: 3478, dscp: 0, sizeBytes: 200 });
    expect(classify(rs, relay)).toEqual({ rule: 'teams-media', className: 'voice' });
    // With the tenant's client port ranges on: audio, video, sharing by the PC's port.
    expect(classify(rs, ipv4Packet({ src: '10.1.0.23', dst: '52.113.20.7', protocol: 17, sport: 50010, dport: 3479 }))).toEqual({ rule: 'teams-audio', className: 'voice' });
    expect(classify(rs, ipv4Packet({ src: '10.1.0.23', dst: '52.113.20.7', protocol: 17, sport: 50025, dport: 3480 }))).toEqual({ rule: 'teams-video', className: 'video' });
    expect(classify(rs, ipv4Packet({ src: '10.1.0.23', dst: '52.113.20.7', protocol: 17, sport: 50045, dport: 3481 }))).toEqual({ rule: 'teams-sharing', className: 'business' });
    // The return direction at the hub: the relay's port is the source.
    expect(classify(rs, ipv4Packet({ src: '52.113.20.7', dst: '10.1.0.23', protocol: 17, sport: 3478, dport: 61234 }))).toEqual({ rule: 'teams-media', className: 'voice' });
    // Not Teams: HTTPS, and UDP next to the range.
    expect(classify(rs, ipv4Packet({ src: '10.1.0.23', dst: '52.113.20.7', protocol: 6, sport: 61234, dport: 443 })).rule).toBeUndefined();
    expect(classify(rs, ipv4Packet({ src: '10.1.0.23', dst: '52.113.20.7', protocol: 17, sport: 61234, dport: 3482 })).rule).toBeUndefined();
  });

  it('zoom, webex and sip: media is voice, SIP signalling is signaling, in the order listed', () => {
    const rs = new RuleSet(expandRules(parseRules([{ catalogue: 'teams' }, { catalogue: 'zoom' }, { catalogue: 'webex' }, { catalogue: 'sip' }], 's'), 's'));
    expect(classify(rs, ipv4Packet({ src: '10.1.0.23', dst: '170.114.1.1', protocol: 17, sport: 55000, dport: 8801 })).className).toBe('voice');
    expect(classify(rs, ipv4Packet({ src: '10.1.0.23', dst: '170.114.1.1', protocol: 17, sport: 55000, dport: 9000 })).rule).toBe('webex-media');
    expect(classify(rs, ipv4Packet({ src: '10.1.0.40', dst: '10.2.0.5', protocol: 17, sport: 5060, dport: 5060 })).className).toBe('signaling');
    expect(classify(rs, ipv4Packet({ src: '10.1.0.40', dst: '10.2.0.5', protocol: 6, sport: 40000, dport: 5061 })).className).toBe('signaling');
    expect(classify(rs, ipv4Packet({ src: '10.1.0.40', dst: '10.2.0.5', protocol: 17, sport: 24580, dport: 16500 })).rule).toBe('rtp-cisco');
    // Zoom's 3478-3479 is taken by Teams' relay rule first: both say voice.
    expect(classify(rs, ipv4Packet({ src: '10.1.0.23', dst: '170.114.1.1', protocol: 17, sport: 55000, dport: 3479 })).rule).toBe('teams-media');
  });
});

describe('rules: config section', () => {
  it('own rules with port strings, prefixes and DSCP, catalogues expanded in place', () => {
    const entries = parseRules(
      [
        { name: 'erp', match: { protocol: 'tcp', dstPrefixes: ['10.9.0.0/16'], dstPorts: [443, '8000-8099'] }, set: { class: 'business' } },
        { catalogue: 'webex' },
        { name: 'backups', match: { dscp: [0], dstPorts: ['873'] }, set: { class: 'bulk', dscp: 8 } },
      ],
      'site.yaml',
    );
    const specs = expandRules(entries, 'site.yaml');
    expect(specs.map((s) => s.name)).toEqual(['erp', 'webex-media', 'backups']);
    expect(specs[0]!.match.dstPorts).toEqual([[443, 443], [8000, 8099]]);
    expect(specs[2]!.set).toEqual({ class: 'bulk', dscp: 8 });
  });

  it('errors name the field and the fix', () => {
    let e = errorOf(() => parseRules([{ name: 'x', match: { dstPorts: ['50000-'] }, set: { class: 'voice' } }], 'site.yaml'));
    expect(e.message).toBe('config site.yaml: rules[0].match.dstPorts[0]: expected a port 0..65535 or a range like "50000-50019" (low first), got "50000-"');
    expect(e.field).toBe('rules[0].match.dstPorts[0]');
    e = errorOf(() => parseRules([{ name: 'x', match: { srcPrefixes: ['10.1.0.0/40'] }, set: { class: 'voice' } }], 'site.yaml'));
    expect(e.message).toMatch(/rules\[0\]\.match\.srcPrefixes\[0\]: expected an IPv4 or IPv6 prefix/);
    e = errorOf(() => parseRules([{ name: 'x', match: {}, set: { class: 'vioce' } }], 'site.yaml'));
    expect(e.message).toMatch(/rules\[0\]\.set\.class: expected a class: control, voice, video/);
    e = errorOf(() => parseRules([{ name: 'x', match: {}, set: {} }], 'site.yaml'));
    expect(e.message).toMatch(/rules\[0\]\.set: set needs a class, a dscp or both/);
    e = errorOf(() => parseRules([{ name: 'x', match: { protcol: 'udp' }, set: { class: 'voice' } }], 'site.yaml'));
    expect(e.message).toMatch(/rules\[0\]\.match: unknown key "protcol"/);
    e = errorOf(() => expandRules(parseRules([{ catalogue: 'temas' }], 'site.yaml'), 'site.yaml'));
    expect(e.message).toBe('config site.yaml: rules[0].catalogue: no application catalogue "temas"');
    expect(e.fix).toBe(`use one of sip, teams, webex, zoom (files in ${APP_CATALOGUE_DIR})`);
    e = errorOf(() => expandRules(parseRules([{ catalogue: 'teams' }, { catalogue: 'teams' }], 'site.yaml'), 'site.yaml'));
    expect(e.message).toMatch(/rules\[1\] \(catalogue teams\): rule name "teams-audio" is used twice \(first in rules\[0\] \(catalogue teams\)\)/);
  });
});
