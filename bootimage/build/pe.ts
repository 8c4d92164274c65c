/**
 * Makes a PE image (the unified kernel image objcopy wrote) independent of the build's time: its
 * COFF TimeDateStamp set to SOURCE_DATE_EPOCH and its optional header's CheckSum zeroed (UEFI
 * does not check it; objcopy may stamp the wall clock into both).
 */
export function pinPeTimestamp(pe: Buffer, epoch: number): void {
  if (pe.readUInt16LE(0) !== 0x5a4d) throw new Error('not a PE image (no MZ header)');
  const at = pe.readUInt32LE(0x3c);
  if (pe.readUInt32LE(at) !== 0x00004550) throw new Error('not a PE image (no PE signature)');
  const coff = at + 4;
  pe.writeUInt32LE(epoch >>> 0, coff + 4); // TimeDateStamp
  const optional = coff + 20;
  pe.writeUInt32LE(0, optional + 64); // CheckSum, at the same offset in PE32 and PE32+
}
