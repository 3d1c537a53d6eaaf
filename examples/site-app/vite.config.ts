import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

/** The construction ERP's server: its REST API and its Truss socket, proxied so the app and the ERP share one origin. */
const erp = process.env.ERP_URL ?? "http://127.0.0.1:3000";
const proxy = {
  "/api": { target: erp },
  "/socket.io": { target: erp, ws: true },
};

export default defineConfig({
  plugins: [react()],
  server: { host: "127.0.0.1", port: Number(process.env.PORT ?? 5173), proxy },
  preview: { host: "127.0.0.1", port: Number(process.env.PORT ?? 4173), proxy },
});
