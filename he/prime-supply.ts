/**
 * Whether CKKS primes of the sizes a parameter set asks for exist: SEAL needs
 * distinct primes p ≡ 1 (mod 2N) of exactly each bit size, and small sizes at
 * large N have few or none (seven 20-bit primes at N = 16384 do not exist).
 */

/** Deterministic Miller–Rabin for n < 3.3·10^24 (these bases suffice). */
function isPrime(n: bigint): boolean {
  if (n < 2n) return false;
  const small = [2n, 3n, 5n, 7n, 11n, 13n, 17n, 19n, 23n, 29n, 31n, 37n];
  for (const p of small) {
    if (n === p) return true;
    if (n % p === 0n) return false;
  }
  let d = n - 1n,
    r = 0;
  while ((d & 1n) === 0n) {
    d >>= 1n;
    r++;
  }
  const pow = (b: bigint, e: bigint): bigint => {
    let x = 1n;
    b %= n;
    while (e > 0n) {
      if (e & 1n) x = (x * b) % n;
      b = (b * b) % n;
      e >>= 1n;
    }
    return x;
  };
  outer: for (const a of small) {
    let x = pow(a, d);
    if (x === 1n || x === n - 1n) continue;
    for (let i = 1; i < r; i++) {
      x = (x * x) % n;
      if (x === n - 1n) continue outer;
    }
    return false;
  }
  return true;
}

/** How many primes of exactly `bits` bits with p ≡ 1 (mod 2N) exist, counting up to `enough`. */
export function primesOfSize(bits: number, polyModulusDegree: number, enough: number): number {
  const m = BigInt(2 * polyModulusDegree);
  const lo = 1n << BigInt(bits - 1),
    hi = 1n << BigInt(bits);
  let found = 0;
  // From the top down, as SEAL picks them.
  for (let p = ((hi - 1n) / m) * m + 1n; p >= lo && found < enough; p -= m) {
    if (p < hi && isPrime(p)) found++;
  }
  return found;
}

/** The first bit size of `coeffModulusBits` with fewer primes than it asks for, with how many exist. */
export function missingPrimes(
  coeffModulusBits: number[],
  polyModulusDegree: number,
): { bits: number; asked: number; exist: number } | undefined {
  const asked = new Map<number, number>();
  for (const b of coeffModulusBits) asked.set(b, (asked.get(b) ?? 0) + 1);
  for (const [bits, count] of asked) {
    const exist = primesOfSize(bits, polyModulusDegree, count);
    if (exist < count) return { bits, asked: count, exist };
  }
  return undefined;
}
