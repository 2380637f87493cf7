export const main = async (a: string[]): Promise<number> => { console.log('hi', a); return 0; };
