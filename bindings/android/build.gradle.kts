// Why this file: the jobseal Android library (AAR) as a Gradle module that builds its own native
// code, so that `gradle :jobseal:assembleRelease` on a clone with the Android SDK, the NDK and
// cargo-ndk produces a complete AAR (four ABIs, generated Kotlin, the platform classes of
// io.jobseal.android), and `gradle :jobseal:publish…` publishes it with a POM.
//
// Before compiling, each build type runs ../scripts/build-android.sh (cargo-ndk for arm64-v8a,
// armeabi-v7a, x86_64 and x86 at API 26, then UniFFI's Kotlin generation with the Android
// cleaner) into build/generated/jobseal/<buildType>. Release builds jobseal-ffi without features;
// debug builds it with `--features test-support` so that instrumented tests can seal sheets. The
// 16 KB page alignment comes from ../build.rs; check it with check-page-size.sh.
//
// Used from android-demo/ (include(":jobseal")) or standalone through settings.gradle.kts here.
// Written on a machine without the Android SDK: this file was never executed there (see
// docs/integration-android.md, "What was run").
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
    `maven-publish`
}

group = "io.jobseal"
version = providers.gradleProperty("jobseal.version").getOrElse("0.1.0")

val repoRoot: File = projectDir.resolve("../..").canonicalFile
val generatedRoot = layout.buildDirectory.dir("generated/jobseal")

android {
    namespace = "io.jobseal"
    compileSdk = 35
    defaultConfig {
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }
    buildTypes {
        release { isMinifyEnabled = false }   // the app's R8 applies consumer-rules.pro
    }
    sourceSets["main"].java.srcDirs(
        "src/main/kotlin",
        // Hand-written Kotlin over the generated bindings (async extensions, events Flow), shared
        // with the JVM module bindings/kotlin.
        "../kotlin/src/main/kotlin",
    )
    // Per build type, because debug and release are built with different Cargo features.
    for (type in listOf("debug", "release")) {
        val dir = generatedRoot.get().dir(type).asFile
        sourceSets[type].java.srcDir(dir.resolve("kotlin"))
        sourceSets[type].jniLibs.srcDir(dir.resolve("jniLibs"))
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    publishing {
        singleVariant("release") { withSourcesJar() }
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // UniFFI's Kotlin calls the library through JNA; the AAR flavour carries JNA's native parts.
    api("net.java.dev.jna:jna:5.17.0@aar")
    // For @RequiresApi in the generated Android object cleaner.
    implementation("androidx.annotation:annotation:1.9.1")
    // The async API (syncAsync, PlatformAsyncTransport) and the events Flow are suspend/Flow types.
    api("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.10.2")
    // io.jobseal.android.work: the background sweep and sync.
    implementation("androidx.work:work-runtime:2.10.0")
}

// The NDK: ANDROID_NDK_HOME if set, else the one the Android Gradle plugin resolves from the SDK.
val ndkDir: Provider<String> = providers.environmentVariable("ANDROID_NDK_HOME")
    .orElse(androidComponents.sdkComponents.ndkDirectory.map { it.asFile.path })

for (type in listOf("debug", "release")) {
    val cap = type.replaceFirstChar { it.uppercase() }
    val out = generatedRoot.map { it.dir(type) }
    val native = tasks.register<Exec>("jobsealNative$cap") {
        group = "jobseal"
        description = "cargo-ndk build of jobseal-ffi ($type, four ABIs) and its Kotlin bindings"
        workingDir = repoRoot
        commandLine("bash", "bindings/scripts/build-android.sh", type, out.get().asFile.path)
        environment("ANDROID_NDK_HOME", ndkDir.get())
        environment("ANDROID_API", "26")
        // Cargo decides what is stale; Gradle always hands over to it.
        outputs.dir(out)
        outputs.upToDateWhen { false }
    }
    tasks.matching { it.name == "pre${cap}Build" }.configureEach { dependsOn(native) }
}

// The desktop-JVM flavour for app teams' local unit tests: the host's libjobseal_ffi in JNA's
// resource layout (e.g. linux-x86-64/libjobseal_ffi.so), so the AAR's Kotlin runs on a JVM.
val forUnitTestsJar = tasks.register<Exec>("forUnitTestsJar") {
    group = "jobseal"
    description = "jar with the host's libjobseal_ffi for JVM unit tests (built without features)"
    val jar = layout.buildDirectory.file("outputs/forUnitTests/jobseal-android-forUnitTests.jar")
    workingDir = repoRoot
    commandLine("bash", "bindings/android/build-unit-test-jar.sh", "--release", jar.get().asFile.path)
    outputs.file(jar)
    outputs.upToDateWhen { false }
}

afterEvaluate {
    publishing {
        publications {
            register<MavenPublication>("release") {
                from(components["release"])
                groupId = "io.jobseal"
                artifactId = "jobseal-android"
                pom {
                    name.set("jobseal for Android")
                    description.set("Job sheets with customer data encrypted per job and crypto-shredded at close.")
                }
            }
            register<MavenPublication>("forUnitTests") {
                groupId = "io.jobseal"
                artifactId = "jobseal-android-forUnitTests"
                artifact(layout.buildDirectory.file("outputs/forUnitTests/jobseal-android-forUnitTests.jar")) {
                    builtBy(forUnitTestsJar)
                }
                pom {
                    name.set("jobseal for Android: host native library for JVM unit tests")
                    description.set("libjobseal_ffi for the build host in JNA's resource layout; add it to testImplementation next to jobseal-android.")
                    withXml {
                        // On a desktop JVM, JNA needs its jar (with the desktop dispatch library), not its AAR.
                        val deps = asNode().appendNode("dependencies")
                        deps.appendNode("dependency").apply {
                            appendNode("groupId", "net.java.dev.jna")
                            appendNode("artifactId", "jna")
                            appendNode("version", "5.17.0")
                            appendNode("scope", "runtime")
                        }
                    }
                }
            }
        }
        repositories {
            // Override with -Pjobseal.publishUrl=… (and credentials in ~/.gradle/gradle.properties).
            maven {
                name = "jobseal"
                url = uri(providers.gradleProperty("jobseal.publishUrl").getOrElse(layout.buildDirectory.dir("repo").get().asFile.toURI().toString()))
            }
        }
    }
}
