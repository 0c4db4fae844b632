// rrweb-player 1.0.0-alpha.4 ships typings that import svelte, which is not a dependency here; this is the
// part of its interface the dashboard uses.
declare module "rrweb-player" {
  export interface PlayerMeta {
    startTime: number;
    endTime: number;
    totalTime: number;
  }
  export interface PlayerOptions {
    target: HTMLElement;
    props: {
      events: unknown[];
      width?: number;
      height?: number;
      autoPlay?: boolean;
      speed?: number;
      showController?: boolean;
      skipInactive?: boolean;
      mouseTail?: boolean;
      [key: string]: unknown;
    };
  }
  export default class RrwebPlayer {
    constructor(options: PlayerOptions);
    addEventListener(event: string, handler: (params: any) => unknown): void;
    addEvent(event: unknown): void;
    getMetaData(): PlayerMeta;
    getReplayer(): any;
    toggle(): void;
    setSpeed(speed: number): void;
    toggleSkipInactive(): void;
    triggerResize(): void;
    play(): void;
    pause(): void;
    goto(timeOffset: number, play?: boolean): void;
    $destroy(): void;
  }
}
declare module "rrweb-player/dist/style.css";
