/* skelrobust report: a 3-D viewer of clean vs adversarial skeleton clips on a <canvas>.
 *
 * Reads the clips from the JSON block #skelrobust-clips and binds every
 * figure.clip[data-clip] element of the page: perspective projection, bones
 * from the layout's parent list, the clean skeleton in grey under the adversarial one,
 * joints coloured by their displacement (legend in mm), play / pause, a frame slider,
 * drag to rotate, wheel to zoom. Positions arrive as integers in units of `unit_mm`, in
 * (frame, body, joint, xyz) order; the adversarial clip as its difference from the clean.
 * No network, no library.
 */
(function () {
  "use strict";

  // viridis, sampled at five stops
  var STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  var FPS = 30;

  function colour(f) {
    var x = Math.min(Math.max(f, 0), 1) * (STOPS.length - 1);
    var i = Math.min(Math.floor(x), STOPS.length - 2);
    var w = x - i;
    var c = STOPS[i].map(function (v, k) { return Math.round(v + w * (STOPS[i + 1][k] - v)); });
    return "rgb(" + c.join(",") + ")";
  }

  function Viewer(root, clip) {
    this.root = root;
    this.clip = clip;
    this.canvas = root.querySelector("canvas.view");
    // draw in CSS pixels on a backing store of devicePixelRatio times as many
    this.w = this.canvas.width;
    this.h = this.canvas.height;
    var dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(this.w * dpr);
    this.canvas.height = Math.round(this.h * dpr);
    this.ctx = this.canvas.getContext("2d");
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.slider = root.querySelector("input.frame");
    this.button = root.querySelector("button.play");
    this.label = root.querySelector(".frame-no");
    this.frame = 0;
    this.yaw = -0.6;
    this.pitch = 0.25;
    this.zoom = 1;
    this.playing = false;
    this.run = 0;
    this.prepare();
    this.bind();
    this.legend(root.querySelector("canvas.legend-bar"), root.querySelector(".legend .hi"));
    this.draw();
  }

  Viewer.prototype.prepare = function () {
    var c = this.clip, n = c.frames * c.bodies * c.joints, s = c.unit_mm / 1000;
    var up = c.up[0], sign = c.up[1];
    var others = [[1, 2], [2, 0], [0, 1]][up];
    // positions in metres, re-ordered so that (a, b, u) has u pointing up
    this.clean = new Float32Array(n * 3);
    this.adv = new Float32Array(n * 3);
    this.disp = new Float32Array(n);
    this.present = new Uint8Array(c.frames * c.bodies);
    var lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
    var maxDisp = 0;
    for (var i = 0; i < n; i++) {
      var k = i * 3, d2 = 0, nonzero = false;
      for (var j = 0; j < 3; j++) {
        var src = j === 2 ? up : others[j], flip = j === 2 ? sign : 1;
        var p = c.clean[k + src], d = c.delta[k + src];
        this.clean[k + j] = p * s * flip;
        this.adv[k + j] = (p + d) * s * flip;
        d2 += d * d;
        nonzero = nonzero || p !== 0;
      }
      this.disp[i] = Math.sqrt(d2) * c.unit_mm;
      maxDisp = Math.max(maxDisp, this.disp[i]);
      if (nonzero) { this.present[Math.floor(i / c.joints)] = 1; }
    }
    for (var b = 0; b < c.frames * c.bodies; b++) {
      if (!this.present[b]) { continue; }
      for (var v = 0; v < c.joints; v++) {
        for (var q = 0; q < 3; q++) {
          var x = this.clean[(b * c.joints + v) * 3 + q];
          lo[q] = Math.min(lo[q], x);
          hi[q] = Math.max(hi[q], x);
        }
      }
    }
    if (!isFinite(lo[0])) { lo = [0, 0, 0]; hi = [1, 1, 1]; }
    this.centre = [0, 1, 2].map(function (q) { return (lo[q] + hi[q]) / 2; });
    this.floor = lo[2];
    this.radius = Math.max(0.3, Math.hypot(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]) / 2);
    this.maxDisp = maxDisp > 0 ? maxDisp : 1;
  };

  Viewer.prototype.project = function (x, y, z) {
    var a = x - this.centre[0], b = y - this.centre[1], u = z - this.centre[2];
    var cy = Math.cos(this.yaw), sy = Math.sin(this.yaw);
    var cp = Math.cos(this.pitch), sp = Math.sin(this.pitch);
    var sx = a * cy - b * sy, depth = a * sy + b * cy;
    var sy2 = u * cp - depth * sp, dz = u * sp + depth * cp;
    var dist = 3 * this.radius;
    var w = this.w, h = this.h;
    var f = 0.42 * Math.min(w, h) * this.zoom * dist / this.radius;
    var k = f / Math.max(dist + dz, 1e-3);
    return [w / 2 + sx * k, h / 2 - sy2 * k];
  };

  Viewer.prototype.drawFloor = function () {
    var ctx = this.ctx, r = this.radius, c = this.centre, steps = 6;
    ctx.strokeStyle = "rgba(0,0,0,0.08)";
    ctx.lineWidth = 1;
    for (var i = 0; i <= steps; i++) {
      var t = -r + (2 * r * i) / steps;
      var lines = [[[c[0] + t, c[1] - r], [c[0] + t, c[1] + r]],
                   [[c[0] - r, c[1] + t], [c[0] + r, c[1] + t]]];
      for (var l = 0; l < 2; l++) {
        var p = this.project(lines[l][0][0], lines[l][0][1], this.floor);
        var q = this.project(lines[l][1][0], lines[l][1][1], this.floor);
        ctx.beginPath();
        ctx.moveTo(p[0], p[1]);
        ctx.lineTo(q[0], q[1]);
        ctx.stroke();
      }
    }
  };

  Viewer.prototype.drawBody = function (pos, base, style, width) {
    var ctx = this.ctx, parents = this.clip.parents, pts = [];
    for (var v = 0; v < parents.length; v++) {
      var k = (base + v) * 3;
      pts.push(this.project(pos[k], pos[k + 1], pos[k + 2]));
    }
    ctx.strokeStyle = style;
    ctx.lineWidth = width;
    ctx.lineCap = "round";
    ctx.beginPath();
    for (var j = 0; j < parents.length; j++) {
      if (parents[j] < 0) { continue; }
      ctx.moveTo(pts[j][0], pts[j][1]);
      ctx.lineTo(pts[parents[j]][0], pts[parents[j]][1]);
    }
    ctx.stroke();
    return pts;
  };

  Viewer.prototype.draw = function () {
    var c = this.clip, ctx = this.ctx;
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, this.w, this.h);
    this.drawFloor();
    var bodyStyles = ["#2b2b2b", "#7a3b00"];
    for (var m = 0; m < c.bodies; m++) {
      var slot = this.frame * c.bodies + m;
      if (!this.present[slot]) { continue; }
      var base = slot * c.joints;
      this.drawBody(this.clean, base, "rgba(150,150,150,0.75)", 5);
      var pts = this.drawBody(this.adv, base, bodyStyles[m % 2], 2);
      for (var v = 0; v < c.joints; v++) {
        ctx.fillStyle = colour(this.disp[base + v] / this.maxDisp);
        ctx.beginPath();
        ctx.arc(pts[v][0], pts[v][1], 3.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    this.slider.value = String(this.frame);
    this.label.textContent = "frame " + (this.frame + 1) + " / " + c.frames;
  };

  Viewer.prototype.legend = function (bar, hiLabel) {
    var ctx = bar.getContext("2d");
    for (var x = 0; x < bar.width; x++) {
      ctx.fillStyle = colour(x / Math.max(bar.width - 1, 1));
      ctx.fillRect(x, 0, 1, bar.height);
    }
    hiLabel.textContent = this.maxDisp.toFixed(1) + " mm";
  };

  Viewer.prototype.setFrame = function (t) {
    this.frame = Math.min(Math.max(t, 0), this.clip.frames - 1);
    this.draw();
  };

  Viewer.prototype.toggle = function () {
    var self = this, last = null, acc = 0, run = ++this.run;
    this.playing = !this.playing;
    this.button.textContent = this.playing ? "Pause" : "Play";
    this.button.setAttribute("aria-pressed", String(this.playing));
    function step(now) {
      if (!self.playing || run !== self.run) { return; }  // paused, or a newer loop runs
      if (last !== null) { acc += (now - last) / 1000; }
      last = now;
      var advance = Math.floor(acc * FPS);
      if (advance > 0) {
        acc -= advance / FPS;
        self.setFrame((self.frame + advance) % self.clip.frames);
      }
      window.requestAnimationFrame(step);
    }
    if (this.playing) { window.requestAnimationFrame(step); }
  };

  Viewer.prototype.bind = function () {
    var self = this, drag = null;
    this.slider.max = String(this.clip.frames - 1);
    this.slider.addEventListener("input", function () {
      self.setFrame(parseInt(self.slider.value, 10) || 0);
    });
    this.button.addEventListener("click", function () { self.toggle(); });
    this.canvas.addEventListener("pointerdown", function (e) {
      drag = [e.clientX, e.clientY];
      self.canvas.setPointerCapture(e.pointerId);
    });
    this.canvas.addEventListener("pointermove", function (e) {
      if (!drag) { return; }
      self.yaw += (e.clientX - drag[0]) * 0.01;
      self.pitch = Math.min(Math.max(self.pitch + (e.clientY - drag[1]) * 0.01, -1.5), 1.5);
      drag = [e.clientX, e.clientY];
      self.draw();
    });
    this.canvas.addEventListener("pointerup", function () { drag = null; });
    this.canvas.addEventListener("wheel", function (e) {
      e.preventDefault();
      self.zoom = Math.min(Math.max(self.zoom * Math.exp(-e.deltaY * 0.001), 0.3), 5);
      self.draw();
    }, { passive: false });
  };

  var data = document.getElementById("skelrobust-clips");
  var clips = data ? JSON.parse(data.textContent) : [];
  var figures = document.querySelectorAll("figure.clip[data-clip]");
  for (var i = 0; i < figures.length; i++) {
    var clip = clips[parseInt(figures[i].getAttribute("data-clip"), 10)];
    if (clip) { figures[i].viewer = new Viewer(figures[i], clip); }
  }
})();
