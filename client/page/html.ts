/**
 * The demo page `heprune serve --demo` serves at /demo: markup and style
 * only; page.ts (bundled to /demo/page.js) does the work. Every key is made
 * and every ciphertext encrypted and decrypted in the page.
 */
export const DEMO_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>heprune: encrypted inference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 52em; color: #222; padding: 0 1em; }
  h1 { font-size: 1.4em; margin-bottom: 0.2em; }
  .row { display: flex; gap: 2em; flex-wrap: wrap; align-items: flex-start; }
  canvas#pad { border: 1px solid #888; touch-action: none; cursor: crosshair; image-rendering: pixelated; background: #000; }
  #samples button { padding: 0; margin: 2px; border: 1px solid #aaa; background: #000; cursor: pointer; }
  #samples canvas { display: block; image-rendering: pixelated; }
  button.action { font-size: 1em; padding: 0.4em 1em; margin: 0.3em 0.3em 0.3em 0; }
  #status { color: #555; white-space: pre-wrap; }
  #status.error { color: #b00; }
  #prediction { font-size: 2.5em; font-weight: bold; }
  table { border-collapse: collapse; }
  td { padding: 0.1em 0.6em; }
  td:first-child { color: #555; }
  .bar { background: #4a7; height: 0.8em; display: inline-block; vertical-align: middle; }
</style>
</head>
<body>
<h1>Encrypted inference</h1>
<p id="model"></p>
<p id="status">loading…</p>
<div class="row">
  <div>
    <canvas id="pad"></canvas><br>
    <button class="action" id="classify" disabled>Encrypt and classify</button>
    <button class="action" id="clear">Clear</button>
    <div id="samples"></div>
  </div>
  <div id="result" hidden>
    <div>Prediction: <span id="prediction"></span> <span id="label"></span></div>
    <table id="scores"></table>
    <table id="timings"></table>
  </div>
</div>
<p><small>The page makes the keys, sends the server only evaluation keys and ciphertexts, and decrypts the
answer itself: the server sees neither the image, the scores nor the secret key. (This page's script comes from
the same server; a client that does not trust it runs heprune/client from its own copy.)</small></p>
<script type="module" src="page.js"></script>
</body>
</html>
`;
