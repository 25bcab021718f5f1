import { MAX_BITS_128, checkParams, selectParams, levelsOf } from '../../he/params.js';
import { loadSeal } from '../../he/seal-module.js';
import { CkksContext } from '../../he/context.js';

describe('CKKS parameter selection', () => {
  test("the 128-bit limits are SEAL's own", async () => {
    const { m } = await loadSeal();
    for (const [n, bits] of Object.entries(MAX_BITS_128)) expect(m.CoeffModulus.MaxBitCount(Number(n), m.SecLevelType.tc128)).toBe(bits);
  });

  test('picks the smallest secure N for the depth and slots', () => {
    expect(selectParams({ levels: 2, slots: 1024 }).polyModulusDegree).toBe(8192);
    expect(selectParams({ levels: 3, slots: 1024 }).polyModulusDegree).toBe(16384); // 60+3*40+60 = 240 > 218
    expect(selectParams({ levels: 2, slots: 8192 }).polyModulusDegree).toBe(16384);
    expect(selectParams({ levels: 9, slots: 4096 }).polyModulusDegree).toBe(32768);
    // 30-bit scale: 50 + 11·30 + 50 = 430 <= 438 fits N=16384; 12 levels would need 460.
    const p = selectParams({ levels: 11, slots: 4096, scaleBits: 30 });
    expect(p.polyModulusDegree).toBe(16384);
    expect(levelsOf(p)).toBe(11);
    expect(selectParams({ levels: 12, slots: 4096, scaleBits: 30 }).polyModulusDegree).toBe(32768);
    expect(() => selectParams({ levels: 40, slots: 4096 })).toThrow(/no 128-bit-secure CKKS parameters hold 40 levels.*masked refresh/);
  });

  test('insecure or insufficient explicit parameters are rejected with what would fit', async () => {
    expect(() => checkParams({ polyModulusDegree: 8192, coeffModulusBits: [60, 40, 40, 40, 60], scaleBits: 40 })).toThrow(
      /240 coefficient-modulus bits at N=8192 are not 128-bit secure \(at most 218\)/,
    );
    expect(() =>
      checkParams({ polyModulusDegree: 8192, coeffModulusBits: [60, 40, 40, 60], scaleBits: 40 }, { levels: 4, slots: 100 }),
    ).toThrow(/2 levels, the plan needs 4 \(these would fit: N=16384, coeffModulusBits \[60, 40, 40, 40, 40, 60\]\)/);
    expect(() => checkParams({ polyModulusDegree: 5000, coeffModulusBits: [60, 60], scaleBits: 40 })).toThrow(
      /polyModulusDegree 5000: expected one of/,
    );
    await expect(CkksContext.create({ polyModulusDegree: 4096, coeffModulusBits: [60, 40, 40], scaleBits: 40 })).rejects.toThrow(
      /not 128-bit secure/,
    );
  });
});
