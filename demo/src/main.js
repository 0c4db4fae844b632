// The demo shop: a few pages (products, a product, the cart, checkout) recorded by the real, unmodified bardrr
// 2.3.1 agent. What it records and where it sends it come from /bard-demo.json, which Bard renders (the agent
// API's address as this browser reaches it, the app name, the idle timeout, the catalogue): ports set through
// BARD_* variables keep working. Pages change without a reload (history.pushState): rrweb records one full
// snapshot and then the DOM mutations, and the agent never loses a batch to a navigation.
import Agent from "bardrr";
import "./style.css";

const app = document.getElementById("app");
const cartCount = document.getElementById("cart-count");
const cart = new Map(); // product id -> quantity
let products = [];

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

const price = (cents) => `$${(cents / 100).toFixed(2)}`;
const product = (id) => products.find((p) => p.id === id);

function addToCart(id) {
  cart.set(id, (cart.get(id) || 0) + 1);
  cartCount.textContent = String([...cart.values()].reduce((a, b) => a + b, 0));
}

function productsPage() {
  return [
    h("h1", {}, "Products"),
    h("ul", { class: "grid" }, products.map((p) =>
      h("li", { class: "card" },
        h("a", { class: "card-link", href: `/products/${p.id}` },
          h("div", { class: "swatch", style: `background:${p.color}` }),
          h("h2", {}, p.name)),
        h("p", { class: "price" }, price(p.price)),
        h("button", { type: "button", class: "add", onclick: () => addToCart(p.id) }, "Add to cart")))),
  ];
}

function productPage(p) {
  if (!p) return notFound();
  const status = h("p", { class: "status", role: "status" });
  return [
    h("a", { class: "back", href: "/" }, "All products"),
    h("article", { class: "product" },
      h("div", { class: "swatch large", style: `background:${p.color}` }),
      h("div", {},
        h("h1", {}, p.name),
        h("p", { class: "description" }, p.description),
        h("p", { class: "price" }, price(p.price)),
        h("div", { class: "actions" },
          h("button", { type: "button", class: "add", onclick: () => {
            addToCart(p.id);
            status.textContent = `${p.name} is in your cart.`;
          } }, "Add to cart"),
          // Logs an error through console.error: the agent's console plugin records it (an error click).
          h("button", { type: "button", class: "secondary", onclick: () => {
            console.error(`Wishlist service unavailable: could not save ${p.id}`);
          } }, "Save to wishlist"),
          // Does nothing at all: a click on it is a dead click.
          h("button", { type: "button", class: "secondary" }, "Compare")),
        status)),
  ];
}

function cartPage() {
  const lines = [...cart.entries()].map(([id, quantity]) => ({ p: product(id), quantity }));
  if (lines.length === 0) {
    return [h("h1", {}, "Cart"), h("p", {}, "Your cart is empty. "), h("a", { href: "/" }, "Browse products")];
  }
  const total = lines.reduce((sum, { p, quantity }) => sum + p.price * quantity, 0);
  return [
    h("h1", {}, "Cart"),
    h("ul", { class: "lines" }, lines.map(({ p, quantity }) =>
      h("li", {}, h("span", {}, `${p.name} × ${quantity}`), h("span", {}, price(p.price * quantity))))),
    h("p", { class: "total" }, `Total ${price(total)}`),
    h("button", { type: "button", class: "primary", onclick: () => go("/checkout") }, "Checkout"),
  ];
}

function checkoutPage() {
  const field = (label, name, type = "text") =>
    h("label", {}, label, h("input", { name, type, required: "", autocomplete: "off" }));
  const form = h("form", { class: "checkout", onsubmit: (event) => {
    event.preventDefault();
    cart.clear();
    cartCount.textContent = "0";
    // A custom event: a funnel step named "order-placed".
    Agent.handleCustomEvent("order-placed");
    render([h("h1", {}, "Thank you!"), h("p", {}, "Your order is placed (not really: this is a demo)."),
            h("a", { href: "/" }, "Keep shopping")]);
  } },
    field("Name", "name"), field("Email", "email", "email"), field("Address", "address"),
    h("button", { type: "submit", class: "primary" }, "Place order"));
  return [h("h1", {}, "Checkout"), form];
}

function notFound() {
  return [h("h1", {}, "Not found"), h("a", { href: "/" }, "Back to the products")];
}

function render(nodes) {
  app.replaceChildren(...nodes);
  window.scrollTo(0, 0);
}

function route() {
  const path = location.pathname;
  const match = path.match(/^\/products\/([\w-]+)$/);
  if (path === "/") render(productsPage());
  else if (match) render(productPage(product(match[1])));
  else if (path === "/cart") render(cartPage());
  else if (path === "/checkout") render(checkoutPage());
  else render(notFound());
}

function go(path) {
  history.pushState(null, "", path);
  route();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href^='/']");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  go(link.getAttribute("href"));
});
window.addEventListener("popstate", route);

async function start() {
  const config = await (await fetch("/bard-demo.json")).json();
  products = config.products;
  route();
  // Started after the first page is drawn, so the full snapshot shows it.
  new Agent().start({ appName: config.appName, endpoint: config.endpoint, MAX_IDLE_TIME: config.maxIdleTime });
}

start();
