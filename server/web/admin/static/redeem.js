// 核销: the camera reads the shopper's QR code — with the browser's BarcodeDetector where it has one, else
// with the vendored jsQR (loaded only then, from /admin/static/vendor/) — and typing the code always works.
// A confirm button is disabled once tapped (the server also redeems a form once, however often it is posted).
(function () {
  "use strict";
  for (const form of document.querySelectorAll("form.confirm-once")) {
    form.addEventListener("submit", () => {
      const button = form.querySelector("button[type=submit]");
      setTimeout(() => { button.disabled = true; }, 0); // after the browser has taken the submission
    });
  }
  const scan = document.getElementById("scan");
  const video = document.getElementById("camera");
  const field = document.getElementById("f-code");
  if (!scan || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  scan.hidden = false;

  let jsQRLoaded = null;
  function loadJsQR() {
    jsQRLoaded = jsQRLoaded || new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/admin/static/vendor/jsQR.js";
      script.onload = () => resolve(window.jsQR);
      script.onerror = reject;
      document.head.appendChild(script);
    });
    return jsQRLoaded;
  }

  /** A function reading one frame of the video: the QR code's text, or null. */
  async function reader() {
    if ("BarcodeDetector" in window) {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (formats.includes("qr_code")) {
        const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        return async () => {
          const found = await detector.detect(video);
          return found.length ? found[0].rawValue : null;
        };
      }
    }
    const jsQR = await loadJsQR();
    const canvas = document.createElement("canvas");
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    return async () => {
      if (!video.videoWidth) return null;
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      ctx.drawImage(video, 0, 0);
      const found = jsQR(ctx.getImageData(0, 0, canvas.width, canvas.height).data, canvas.width, canvas.height,
        { inversionAttempts: "dontInvert" });
      return found ? found.data : null;
    };
  }

  scan.addEventListener("click", async () => {
    let stream;
    try {
      const read = await reader();
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
      for (;;) {
        const text = await read();
        if (text) {
          field.value = text;
          field.form.submit();
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    } catch {
      field.focus(); // no camera, no permission or no reader: the code can be typed
    } finally {
      if (stream) for (const track of stream.getTracks()) track.stop();
      video.hidden = true;
    }
  });
})();
